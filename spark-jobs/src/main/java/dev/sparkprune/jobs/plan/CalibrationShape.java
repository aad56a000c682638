package dev.sparkprune.jobs.plan;

/**
 * The calibration batch a plan is for: --nsamples windows of --seqlen tokens, cut by the one
 * chunk rule (at most {@value #MAX_CHUNKS} fixed chunks of ceil(nsamples / 16) samples, one
 * batch each through a block) and spread over {@code partitions} calibration partitions.
 */
public record CalibrationShape(int nsamples, int seqlen, int partitions) {
  /** Calibration chunks at most: also the calibration stages' parallelism. */
  public static final int MAX_CHUNKS = 16;

  public CalibrationShape {
    if (nsamples < 1 || seqlen < 1 || partitions < 1) {
      throw new IllegalArgumentException("Invalid calibration shape: " + nsamples + " x " + seqlen + " on " + partitions + " partitions");
    }
  }

  /** Samples per chunk for {@code nsamples}: at most {@value #MAX_CHUNKS} chunks, at least one sample each. */
  public static int chunkSize(int nsamples) {
    return Math.max(1, (nsamples + MAX_CHUNKS - 1) / MAX_CHUNKS);
  }

  public int chunks() {
    int size = chunkSize(nsamples);
    return (nsamples + size - 1) / size;
  }

  /** Tokens of the largest chunk (one batch through a block). */
  public long chunkTokens() {
    return (long) chunkSize(nsamples) * seqlen;
  }

  /** Every calibration token. */
  public long tokens() {
    return (long) nsamples * seqlen;
  }

  /** Partitions that hold chunks: at most one per chunk. */
  public int usedPartitions() {
    return Math.min(partitions, chunks());
  }

  /** Chunks of the fullest partition. */
  public int chunksPerPartition() {
    return (chunks() + usedPartitions() - 1) / usedPartitions();
  }

  /** The height of the chunks' pairwise fold tree: ceil(log2 chunks). */
  public int foldLevels() {
    return 32 - Integer.numberOfLeadingZeros(chunks() - 1);
  }
}
