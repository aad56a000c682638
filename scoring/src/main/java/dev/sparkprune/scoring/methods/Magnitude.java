package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;

/**
 * Magnitude pruning, as the Wanda repository's {@code prune_magnitude}: score |W|. Unstructured,
 * one threshold per matrix, t = the k-th smallest |W| with k = floor(numel * s) (0-based), and
 * every |W| <= t is pruned. N:M: the N smallest |W| of every M consecutive columns of a row.
 * {@link Scope#ROW} is the per-row variant: exactly floor(cols * s) per row.
 */
public final class Magnitude {
  /** The comparison group for unstructured pruning. */
  public enum Scope {
    MATRIX,
    ROW
  }

  private Magnitude() {}

  /** Magnitude as a method: needs no statistics. */
  public static Pruner pruner(Scope scope) {
    return (inputs, target, backend, threads) -> prune(inputs.layer(), inputs.weights(), target, scope, backend, threads);
  }

  public static PruneResult prune(
      String layer, Weights weights, SparsityTarget target, Scope scope, ComputeBackend backend, int threads) {
    weights.checkFinite(layer, threads);
    target.checkFits(layer, weights.cols());
    float[] w = weights.values();
    int cols = weights.cols();
    if (scope == Scope.MATRIX && !target.isStructured()) {
      float[] scores = new float[w.length];
      RowParallel.forEach(w.length, threads, (start, end) -> {
        for (int i = start; i < end; i++) {
          scores[i] = Math.abs(w[i]);
        }
      });
      return RowMasks.pruneAtOrBelowMatrixThreshold(weights, scores, target.ratio(), backend, threads);
    }
    return RowMasks.pruneLowestPerRow(weights, (row, scores) -> {
      for (int c = 0; c < cols; c++) {
        scores[c] = Math.abs(w[row * cols + c]);
      }
    }, target, backend, threads);
  }
}
