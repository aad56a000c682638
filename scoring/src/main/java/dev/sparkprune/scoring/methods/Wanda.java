package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;

/**
 * Wanda (Sun et al., "A Simple and Effective Pruning Approach for Large Language Models"):
 * score S_ij = |W_ij| * sqrt(scaler_row_j), where scaler_row_j = ||X_j||^2 / nsamples is the
 * squared norm of input channel j over the calibration tokens. Comparison group: each output row
 * (the paper's choice), pruning the floor(cols * s) lowest scores with ties to the lower column as
 * the reference's stable sort; or the whole matrix with one threshold as magnitude does. N:M: the
 * N lowest scores of each M consecutive columns of a row.
 */
public final class Wanda {
  /** The comparison group for unstructured pruning. */
  public enum Group {
    ROW,
    MATRIX
  }

  private Wanda() {}

  /** Wanda as a method: scores from the statistics' scaler_row, compared within {@code group}. */
  public static Pruner pruner(Group group) {
    return (inputs, target, backend, threads) -> prune(
        inputs.layer(), inputs.weights(), inputs.requireStatistics("prune", "wanda").scalerRow(), target, group, backend, threads);
  }

  public static PruneResult prune(
      String layer, Weights weights, float[] scalerRow, SparsityTarget target, Group group, ComputeBackend backend, int threads) {
    weights.checkFinite(layer, threads);
    target.checkFits(layer, weights.cols());
    int cols = weights.cols();
    if (group == Group.MATRIX && !target.isStructured()) {
      return RowMasks.pruneAtOrBelowMatrixThreshold(
          weights, scores(layer, weights, scalerRow, threads), target.ratio(), backend, threads);
    }
    float[] norms = RowMasks.channelNorms(layer, "Wanda", scalerRow, cols);
    float[] w = weights.values();
    return RowMasks.pruneLowestPerRow(weights, (row, scores) -> score(w, row * cols, norms, scores, 0, cols), target, backend, threads);
  }

  /**
   * The whole score matrix S = |W| * sqrt(scaler_row), row-major like W: for comparisons across
   * a layer (or, in the job, across layers and blocks). Checks the statistics, not the weights.
   */
  public static float[] scores(String layer, Weights weights, float[] scalerRow, int threads) {
    int rows = weights.rows();
    int cols = weights.cols();
    float[] norms = RowMasks.channelNorms(layer, "Wanda", scalerRow, cols);
    float[] w = weights.values();
    float[] scores = new float[w.length];
    RowParallel.forEach(rows, threads, (start, end) -> {
      for (int r = start; r < end; r++) {
        score(w, r * cols, norms, scores, r * cols, cols);
      }
    });
    return scores;
  }

  /** S = |W| * sqrt(scaler_row) for one row; + 0f turns -0 into +0 so ties compare as equal. */
  private static void score(float[] w, int from, float[] norms, float[] scores, int to, int cols) {
    for (int j = 0; j < cols; j++) {
      scores[to + j] = Math.abs(w[from + j]) * norms[j] + 0f;
    }
  }
}
