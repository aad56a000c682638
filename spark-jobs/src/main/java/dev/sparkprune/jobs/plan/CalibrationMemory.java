package dev.sparkprune.jobs.plan;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * What calibration holds on the executors, from sizes alone, so that a run too large for its
 * executors fails before Spark starts with the numbers instead of an OutOfMemoryError after it:
 * the hidden states cached in total (nsamples x seqlen x hidden floats) and per partition (its
 * chunks), and what one task holds while it runs a chunk through a block (its partition's states
 * in and out, and the chunk's activations: the block's widest linear output per token). Plain
 * arithmetic, reusable by any plan that caches calibration states (the giant-MoE plan too).
 *
 * @param cachedBytes the hidden states of every sample, across the cluster
 * @param partitionBytes the hidden states of one partition's chunks
 * @param taskBytes what one running task holds: its partition's states plus a chunk's activations
 * @param largestArray the longest single float array a task allocates (a chunk's widest activation)
 */
public record CalibrationMemory(long cachedBytes, long partitionBytes, long taskBytes, long largestArray) {
  private static final int FLOAT_BYTES = Float.BYTES;
  /** Java's largest array (a few elements under Integer.MAX_VALUE). */
  private static final long MAX_ARRAY = Integer.MAX_VALUE - 8;

  /**
   * @param hidden floats per token of the cached states
   * @param widestPerToken floats per token of the widest activation a block computes
   * @param chunkSize samples per chunk (chunks are fixed by nsamples)
   * @param partitions partitions the chunks are spread over (at most one per chunk)
   */
  public static CalibrationMemory estimate(long nsamples, long seqlen, long hidden, long widestPerToken, int chunkSize, int partitions) {
    long chunks = (nsamples + chunkSize - 1) / chunkSize;
    long used = Math.max(1, Math.min(chunks, partitions));
    long chunksPerPartition = (chunks + used - 1) / used;
    long chunkTokens = (long) chunkSize * seqlen;
    long partitionStates = chunksPerPartition * chunkTokens * hidden * FLOAT_BYTES;
    // A task keeps its partition's states (read from the cache) and the states it produces, and one chunk's activations.
    long activations = chunkTokens * (2 * hidden + 2 * widestPerToken) * FLOAT_BYTES;
    return new CalibrationMemory(nsamples * seqlen * hidden * FLOAT_BYTES, partitionStates, 2 * partitionStates + activations,
        chunkTokens * Math.max(hidden, widestPerToken));
  }

  /**
   * The estimate for a run's calibration settings, cut into chunks by the one rule every job
   * uses ({@link CalibrationShape#chunkSize}) and spread over the partitions it asks for, else
   * over {@code defaultPartitions} (Spark's default parallelism as it will be).
   */
  public static CalibrationMemory estimate(CalibrationSettings settings, long hidden, long widestPerToken, int defaultPartitions) {
    return estimate(settings.nsamples(), settings.seqlen(), hidden, widestPerToken, CalibrationShape.chunkSize(settings.nsamples()),
        settings.partitions() > 0 ? settings.partitions() : defaultPartitions);
  }

  /**
   * Refuses, before any window is sampled, calibration settings the executors cannot hold: the
   * check below for {@link #estimate(CalibrationSettings, long, long, int)}, naming the settings.
   */
  public static void check(CalibrationSettings settings, long hidden, long widestPerToken, ExecutorShape executors, int defaultPartitions) {
    estimate(settings, hidden, widestPerToken, defaultPartitions).check(
        String.format(Locale.ROOT, "%d samples x %d tokens (--nsamples, --seqlen)", settings.nsamples(), settings.seqlen()), executors);
  }

  /**
   * The widest activation per token of any block: the largest output of a linear that every
   * token passes (q/k/v, gate/up, a fused one), or the top-k routed experts' outputs together.
   */
  public static long widestPerToken(ModelLayout layout, int topK) {
    long widest = 0;
    Map<String, Long> experts = new HashMap<>();
    for (Linear linear : layout.linears()) {
      if (linear.isRoutedExpert()) {
        experts.merge(linear.block() + "/" + linear.name().replaceAll("experts\\.\\d+\\.", "experts.*."), linear.outFeatures(), Math::max);
      } else {
        widest = Math.max(widest, linear.outFeatures());
      }
    }
    for (long out : experts.values()) {
      widest = Math.max(widest, out * Math.max(1, topK));
    }
    return widest;
  }

  /**
   * Refuses, with one line naming the numbers, a run whose executors cannot hold this: a task's
   * share of an executor heap (heap less Spark's reservation, over the tasks it runs at once),
   * the cached states of all samples across the executors when their number is known, and
   * Java's largest array.
   */
  public void check(String run, ExecutorShape executors) {
    ValidationException.check(largestArray <= MAX_ARRAY,
        "Cannot calibrate %s: one chunk's activations would be a single array of %,d floats, over Java's limit of %,d; use fewer or "
            + "shorter samples (--nsamples, --seqlen)", run, largestArray, MAX_ARRAY);
    long usable = executors.usableBytes();
    long perTask = executors.usableTaskBytes();
    ValidationException.check(taskBytes <= perTask,
        "Cannot calibrate %s: a task holds about %s (its partition's hidden states, %s, in and out, and a chunk's activations), over "
            + "the %s each of %d tasks has in an executor of %s (%s); use fewer or shorter samples (--nsamples, --seqlen), more "
            + "--partitions, or more executor memory",
        run, size(taskBytes), size(partitionBytes), size(perTask), executors.cores(), size(executors.memoryBytes()), executors.source());
    if (executors.executors() > 0) {
      long total = usable * executors.executors();
      ValidationException.check(cachedBytes <= total,
          "Cannot calibrate %s: the cached hidden states take %s in all, over the %s of %d executor(s) of %s (%s); use fewer or "
              + "shorter samples (--nsamples, --seqlen), or more executor memory",
          run, size(cachedBytes), size(total), executors.executors(), size(executors.memoryBytes()), executors.source());
    }
  }

  /** Bytes as MiB or GiB, as the refusals print them. */
  public static String size(long bytes) {
    return bytes >= 1L << 30 ? String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30))
        : String.format(Locale.ROOT, "%.0f MiB", bytes / (double) (1L << 20));
  }
}
