package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.tensorio.mask.Mask;

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

  public static PruneResult prune(String layer, Weights weights, SparsityTarget target, Scope scope, int threads) {
    weights.checkFinite(layer);
    target.checkFits(layer, weights.cols());
    int rows = weights.rows();
    int cols = weights.cols();
    float[] w = weights.values();
    float[] scores = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      scores[i] = Math.abs(w[i]);
    }
    Mask.Builder mask = Mask.builder(rows, cols);
    if (target.isStructured()) {
      RowParallel.forEach(rows, threads, (start, end) -> {
        for (int r = start; r < end; r++) {
          for (int g = 0; g < cols; g += target.groupSize()) {
            Selection.pruneLowestInGroup(scores, r * cols, g, g + target.groupSize(), target.prunedPerGroup(), mask, r);
          }
        }
      });
    } else if (target.ratio() > 0 && w.length > 0 && scope == Scope.MATRIX) {
      long k = (long) (w.length * target.ratio());
      float threshold = new Selection().kthSmallest(scores, 0, scores.length, k);
      for (int i = 0; i < scores.length; i++) {
        if (scores[i] <= threshold) {
          mask.prune(i / cols, i % cols);
        }
      }
    } else if (target.ratio() > 0) {
      int perRow = (int) (cols * target.ratio());
      RowParallel.forEach(rows, threads, (start, end) -> {
        Selection selection = new Selection();
        for (int r = start; r < end; r++) {
          selection.pruneLowest(scores, r * cols, cols, perRow, mask, r);
        }
      });
    }
    return applied(mask.build(), w);
  }

  /** The input weights with pruned entries set to exactly zero; kept entries bit-identical. */
  static PruneResult applied(Mask mask, float[] weights) {
    float[] pruned = weights.clone();
    mask.applyTo(pruned);
    return PruneResult.masked(mask, pruned);
  }
}
