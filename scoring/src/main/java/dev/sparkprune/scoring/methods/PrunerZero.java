package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;

/**
 * Pruner-Zero's evolved metric (Dong et al., "Pruner-Zero: Evolving Symbolic Pruning Metric from
 * scratch for Large Language Models", ICML 2024; pprp/Pruner-Zero data/best_tree.json, the tree
 * mul(abs(mul(W, W)), mms(G)) that lib/prune.py prune_pruner_zero evaluates with W = |weight|):
 * S_ij = |W_ij|^2 * (G_ij - min G) / (max G - min G), min and max over the whole matrix, with G
 * GBLM-Pruner's l2 gradient (scripts/llama_7b.sh passes the l2 file). Compared per output row
 * (and N:M) as Wanda; calibration activations are not used. In float32 as the authors' tree.
 *
 * <p>A constant G (max = min: every sample's gradient zero, e.g. a routed expert no calibration
 * token chose) makes the authors' min-max 0/0, NaN scores and an undefined mask; here the
 * gradient factor is then 1, so the weight falls back to magnitude ranking.
 */
public final class PrunerZero {
  private PrunerZero() {}

  /** Pruner-Zero as a method: G from the inputs' gradient statistic; activations unused. */
  public static Pruner pruner() {
    return (inputs, target, backend, threads) -> prune(
        inputs.layer(), inputs.weights(), inputs.requireGradient("prunerzero").values(), target, backend, threads);
  }

  public static PruneResult prune(
      String layer, Weights weights, float[] gradient, SparsityTarget target, ComputeBackend backend, int threads) {
    weights.checkFinite(layer, threads);
    target.checkFits(layer, weights.cols());
    Gblm.checkGradient(layer, "Pruner-Zero", weights, gradient);
    float min = Float.POSITIVE_INFINITY;
    float max = Float.NEGATIVE_INFINITY;
    for (float g : gradient) {
      min = Math.min(min, g);
      max = Math.max(max, g);
    }
    boolean constant = !(max > min);
    float low = min;
    float range = max - min;
    int cols = weights.cols();
    float[] w = weights.values();
    return RowMasks.pruneLowestPerRow(
        weights,
        (row, scores) -> {
          for (int j = 0; j < cols; j++) {
            float value = w[row * cols + j];
            float scaled = constant ? 1f : (gradient[row * cols + j] - low) / range;
            scores[j] = value * value * scaled + 0f;
          }
        },
        target,
        backend,
        threads);
  }
}
