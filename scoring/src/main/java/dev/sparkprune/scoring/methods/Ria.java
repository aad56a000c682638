package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;

/**
 * RIA, relative importance and activations (Zhang et al., "Plug-and-Play: An Efficient
 * Post-training Pruning Method for Large Language Models"): score
 * S_ij = (|W_ij| / sum_i |W_ij| + |W_ij| / sum_j |W_ij|) * ||X_j||^a, with ||X_j|| =
 * sqrt(scaler_row_j) and a = 0.5; compared per output row like Wanda.
 */
public final class Ria {
  /** The paper's activation exponent. */
  public static final double DEFAULT_EXPONENT = 0.5;

  private Ria() {}

  /** RIA as a method: activations from the statistics' scaler_row, raised to {@code exponent}. */
  public static Pruner pruner(double exponent) {
    return (inputs, target, backend, threads) -> prune(
        inputs.layer(), inputs.weights(), inputs.requireStatistics("prune", "ria").scalerRow(), target, exponent, backend, threads);
  }

  public static PruneResult prune(
      String layer, Weights weights, float[] scalerRow, SparsityTarget target, double exponent, ComputeBackend backend, int threads) {
    weights.checkFinite(layer, threads);
    target.checkFits(layer, weights.cols());
    int rows = weights.rows();
    int cols = weights.cols();
    float[] norms = RowMasks.channelNorms(layer, "RIA", scalerRow, cols);
    float[] w = weights.values();
    // Relative importance: each weight against its input channel (column) and its output (row).
    double[] columnSums = new double[cols];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        columnSums[c] += Math.abs(w[r * cols + c]);
      }
    }
    float[] columnInverse = new float[cols];
    float[] activation = new float[cols];
    for (int c = 0; c < cols; c++) {
      columnInverse[c] = columnSums[c] == 0 ? 0f : (float) (1.0 / columnSums[c]);
      activation[c] = (float) Math.pow(norms[c], exponent);
    }
    return RowMasks.pruneLowestPerRow(
        weights,
        (row, scores) -> {
          double rowSum = 0;
          for (int c = 0; c < cols; c++) {
            rowSum += Math.abs(w[row * cols + c]);
          }
          float rowInverse = rowSum == 0 ? 0f : (float) (1.0 / rowSum);
          for (int c = 0; c < cols; c++) {
            float magnitude = Math.abs(w[row * cols + c]);
            scores[c] = (magnitude * columnInverse[c] + magnitude * rowInverse) * activation[c] + 0f;
          }
        },
        target,
        backend,
        threads);
  }
}
