package dev.sparkprune.jobs.calibration;

import java.io.Serializable;

/**
 * What an expert task of an expert-parallel block returns: an expert's unweighted output on the
 * rows of one chunk routed to it (for stage 3, by chunk), or a statistics key's partial folded
 * over every chunk (for the pass's fold, by key).
 */
final class ExpertResult<P extends Serializable> implements Serializable {
  private static final long serialVersionUID = 1L;

  final int chunk;
  final int expert;
  /** [rows x hidden]; empty for a partial. */
  final float[] output;
  /** The statistics key; empty for an output. */
  final String key;
  /** The partial; null only for an output (never read then). */
  final ChunkPartial<P> partial;

  private ExpertResult(int chunk, int expert, float[] output, String key, ChunkPartial<P> partial) {
    this.chunk = chunk;
    this.expert = expert;
    this.output = output;
    this.key = key;
    this.partial = partial;
  }

  static <P extends Serializable> ExpertResult<P> output(int chunk, int expert, float[] output) {
    return new ExpertResult<>(chunk, expert, output, "", null);
  }

  static <P extends Serializable> ExpertResult<P> partial(String key, ChunkPartial<P> partial) {
    return new ExpertResult<>(-1, -1, new float[0], key, partial);
  }

  boolean isOutput() {
    return key.isEmpty();
  }
}
