package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.backend.Selection;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;

/**
 * Turns a [rows x cols] score matrix into a mask and masked weights, row-parallel: the shared
 * selection step of magnitude and Wanda, whose kept weights are the input's, bit for bit.
 */
final class RowMasks {
  private RowMasks() {}

  /**
   * ||X_j|| = sqrt(scaler_row_j) per input channel, in float as the references compute on
   * float32 tensors; checks the statistics match the weight's width and are finite.
   */
  static float[] channelNorms(String layer, String method, float[] scalerRow, int cols) {
    ValidationException.check(
        scalerRow.length == cols,
        "Cannot prune layer %s with %s: statistics cover %d input channels but the weight has %d",
        layer,
        method,
        scalerRow.length,
        cols);
    float[] norms = new float[cols];
    for (int j = 0; j < cols; j++) {
      ValidationException.check(
          Float.isFinite(scalerRow[j]) && scalerRow[j] >= 0,
          "Cannot prune layer %s with %s: activation statistic of channel %d is %s",
          layer,
          method,
          j,
          scalerRow[j]);
      norms[j] = (float) Math.sqrt(scalerRow[j]);
    }
    return norms;
  }

  /** Scores of one row into {@code scores[0, cols)}. */
  @FunctionalInterface
  interface RowScorer {
    void score(int row, float[] scores);
  }

  /**
   * Per row: floor(cols * s) lowest scores, or N of every M; pruned weights set to zero. Rows
   * are scored into per-thread scratch, so no score matrix is allocated.
   */
  static PruneResult pruneLowestPerRow(Weights weights, RowScorer scorer, SparsityTarget target, int threads) {
    int cols = weights.cols();
    int perRow = (int) (cols * target.ratio());
    return build(weights, threads, (selection, row, keepBits) -> {
      float[] scores = selection.rowScratch(cols);
      scorer.score(row, scores);
      if (target.isStructured()) {
        Selection.keepAllButLowestInGroups(scores, 0, cols, target.prunedPerGroup(), target.groupSize(), keepBits);
      } else {
        selection.keepAllButLowest(scores, 0, cols, perRow, keepBits);
      }
    });
  }

  /** One threshold t = k-th smallest score, k = floor(numel * s); prunes every score <= t. */
  static PruneResult pruneAtOrBelowMatrixThreshold(Weights weights, float[] scores, double ratio, int threads) {
    int cols = weights.cols();
    boolean prune = ratio > 0 && scores.length > 0;
    float threshold = prune ? new Selection().kthSmallest(scores, 0, scores.length, (long) (scores.length * ratio)) : 0f;
    return build(weights, threads, (selection, row, keepBits) -> {
      if (prune) {
        Selection.keepAtLeast(scores, row * cols, cols, threshold, true, keepBits);
      } else {
        Selection.keepAll(cols, keepBits);
      }
    });
  }

  /** Fills one row's keep bits. */
  @FunctionalInterface
  interface RowSelector {
    void select(Selection selection, int row, byte[] keepBits);
  }

  private static PruneResult build(Weights weights, int threads, RowSelector selector) {
    int rows = weights.rows();
    int cols = weights.cols();
    float[] w = weights.values();
    float[] out = new float[w.length];
    Mask.Builder mask = Mask.builder(rows, cols);
    RowParallel.forEach(rows, threads, (start, end) -> {
      Selection selection = new Selection();
      byte[] keepBits = new byte[Mask.rowBytes(cols)];
      for (int r = start; r < end; r++) {
        selector.select(selection, r, keepBits);
        mask.setRow(r, keepBits);
        Selection.applyRow(keepBits, w, r * cols, out, r * cols, cols);
      }
    });
    return PruneResult.masked(mask.build(), out);
  }
}
