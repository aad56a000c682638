package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.tensorio.ValidationException;

/**
 * GBLM-Pruner (Das et al., "Beyond Size: How Gradients Shape Pruning Decisions in Large Language
 * Models", arXiv 2311.04902; RocktimJyotiDas/GBLM-Pruner lib/prune.py prune_gblm): score
 * S_ij = |W_ij| * sqrt(scaler_row_j) + |W_ij| * |G_ij|, Wanda's activation term plus a gradient
 * term, where G is the per-weight gradient norm over the calibration samples of the dense model's
 * loss, each sample's gradient scaled by 100 (the l2 form sqrt(sum_s (100 g_s)^2) by default, the
 * authors' run scripts' choice; the l1 form sum_s |100 g_s| also accepted). Compared per output
 * row as Wanda: the floor(cols * s) lowest of each row (ties to the lower column, the reference's
 * stable sort), or the N lowest of every M consecutive columns. Computed in float32 where the
 * authors multiply the fp16 weight by the fp16 gradient before widening.
 */
public final class Gblm {
  private Gblm() {}

  /** GBLM as a method: scaler_row from the statistics, G from the inputs' gradient statistic. */
  public static Pruner pruner() {
    return (inputs, target, backend, threads) -> prune(
        inputs.layer(), inputs.weights(), inputs.requireStatistics("prune", "gblm").scalerRow(),
        inputs.requireGradient("gblm").values(), target, backend, threads);
  }

  public static PruneResult prune(
      String layer, Weights weights, float[] scalerRow, float[] gradient, SparsityTarget target, ComputeBackend backend, int threads) {
    weights.checkFinite(layer, threads);
    target.checkFits(layer, weights.cols());
    int cols = weights.cols();
    float[] norms = RowMasks.channelNorms(layer, "GBLM", scalerRow, cols);
    checkGradient(layer, "GBLM", weights, gradient);
    float[] w = weights.values();
    return RowMasks.pruneLowestPerRow(weights, (row, scores) -> score(w, gradient, row * cols, norms, scores, 0, cols), target, backend, threads);
  }

  /** The whole score matrix, row-major like W (for comparisons across layers). */
  public static float[] scores(String layer, Weights weights, float[] scalerRow, float[] gradient, int threads) {
    int cols = weights.cols();
    float[] norms = RowMasks.channelNorms(layer, "GBLM", scalerRow, cols);
    checkGradient(layer, "GBLM", weights, gradient);
    float[] w = weights.values();
    float[] scores = new float[w.length];
    RowParallel.forEach(weights.rows(), threads, (start, end) -> {
      for (int r = start; r < end; r++) {
        score(w, gradient, r * cols, norms, scores, r * cols, cols);
      }
    });
    return scores;
  }

  /** |W| sqrt(scaler_row) + |W| |G| for one row; + 0f turns -0 into +0 so ties compare as equal. */
  private static void score(float[] w, float[] gradient, int from, float[] norms, float[] scores, int to, int cols) {
    for (int j = 0; j < cols; j++) {
      float magnitude = Math.abs(w[from + j]);
      scores[to + j] = magnitude * norms[j] + magnitude * Math.abs(gradient[from + j]) + 0f;
    }
  }

  /** The gradient statistic must have W's shape and be finite. */
  static void checkGradient(String layer, String method, Weights weights, float[] gradient) {
    ValidationException.check(
        gradient.length == weights.size(),
        "Cannot prune layer %s with %s: gradient statistics hold %d values but the weight has %d x %d",
        layer, method, gradient.length, weights.rows(), weights.cols());
    for (int i = 0; i < gradient.length; i++) {
      if (!Float.isFinite(gradient[i])) {
        throw new ValidationException(String.format(
            "Cannot prune layer %s with %s: gradient statistic [%d, %d] is %s", layer, method, i / weights.cols(), i % weights.cols(), gradient[i]));
      }
    }
  }
}
