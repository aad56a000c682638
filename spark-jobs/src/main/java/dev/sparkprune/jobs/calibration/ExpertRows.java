package dev.sparkprune.jobs.calibration;

import java.io.Serializable;
import java.util.Objects;

/**
 * What stage 1 of an expert-parallel block ships to one expert group for one chunk (the
 * shuffle keyed by group): for each expert of the group its routed rows and their routing
 * weights, and the MoE input of those rows, one expert after the other; or, when every expert's
 * statistics cover every token (--moe-calibration all), the chunk's whole MoE input, from which
 * the group gathers each expert's rows itself.
 */
final class ExpertRows implements Serializable {
  private static final long serialVersionUID = 1L;

  final int chunk;
  final int sequences;
  final int tokens;
  /** The MoE input's width (hidden). */
  final int width;
  /** Per expert of the group, in order: the tokens routed to it, ascending, and their weights. */
  final int[][] rows;
  final float[][] weights;
  /** The routed rows' inputs concatenated by expert, or the whole input [tokens x hidden] when {@link #allTokens}. */
  final float[] x;
  final boolean allTokens;

  ExpertRows(int chunk, int sequences, int tokens, int width, int[][] rows, float[][] weights, float[] x, boolean allTokens) {
    this.chunk = chunk;
    this.sequences = sequences;
    this.tokens = tokens;
    this.width = width;
    this.rows = Objects.requireNonNull(rows, "rows is null");
    this.weights = Objects.requireNonNull(weights, "weights is null");
    this.x = Objects.requireNonNull(x, "x is null");
    this.allTokens = allTokens;
  }
}
