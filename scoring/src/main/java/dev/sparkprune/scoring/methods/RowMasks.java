package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.Selection;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;

/**
 * Turns scores into a mask and masked weights with the backend's selection: the shared step of
 * magnitude, Wanda and RIA, whose kept weights are the input's, bit for bit.
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

  /**
   * Per row: floor(cols * s) lowest scores, or N of every M, chosen by the backend; pruned
   * weights set to zero. Rows are scored into the backend's scratch, so no score matrix is
   * allocated on the CPU.
   */
  static PruneResult pruneLowestPerRow(
      Weights weights, ComputeBackend.RowScorer scorer, SparsityTarget target, ComputeBackend backend, int threads) {
    int rows = weights.rows();
    int cols = weights.cols();
    float[] w = weights.values();
    float[] out = new float[w.length];
    Mask.Builder mask = Mask.builder(rows, cols);
    ComputeBackend.RowSink sink = (row, keepBits) -> {
      mask.setRow(row, keepBits);
      Selection.applyRow(keepBits, w, row * cols, out, row * cols, cols);
    };
    if (target.isStructured()) {
      backend.pruneLowestPerGroup(rows, cols, scorer, target.prunedPerGroup(), target.groupSize(), sink, threads);
    } else {
      backend.pruneLowestPerRow(rows, cols, scorer, (int) (cols * target.ratio()), sink, threads);
    }
    return PruneResult.masked(mask.build(), out);
  }

  /** One threshold t = k-th smallest score, k = floor(numel * s); prunes every score <= t. */
  static PruneResult pruneAtOrBelowMatrixThreshold(
      Weights weights, float[] scores, double ratio, ComputeBackend backend, int threads) {
    int rows = weights.rows();
    int cols = weights.cols();
    boolean prune = ratio > 0 && scores.length > 0;
    float threshold = prune ? backend.kthSmallest(scores, 0, scores.length, (long) (scores.length * ratio)) : 0f;
    float[] w = weights.values();
    float[] out = new float[w.length];
    Mask.Builder mask = Mask.builder(rows, cols);
    RowParallel.forEach(rows, threads, (start, end) -> {
      byte[] keepBits = new byte[Mask.rowBytes(cols)];
      for (int r = start; r < end; r++) {
        if (prune) {
          Selection.keepAtLeast(scores, r * cols, cols, threshold, true, keepBits);
        } else {
          Selection.keepAll(cols, keepBits);
        }
        mask.setRow(r, keepBits);
        Selection.applyRow(keepBits, w, r * cols, out, r * cols, cols);
      }
    });
    return PruneResult.masked(mask.build(), out);
  }
}
