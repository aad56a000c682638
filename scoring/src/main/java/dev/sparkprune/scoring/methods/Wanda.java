package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;

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

  public static PruneResult prune(
      String layer, Weights weights, float[] scalerRow, SparsityTarget target, Group group, int threads) {
    weights.checkFinite(layer);
    target.checkFits(layer, weights.cols());
    int rows = weights.rows();
    int cols = weights.cols();
    ValidationException.check(
        scalerRow.length == cols,
        "Cannot prune layer %s with Wanda: statistics cover %d input channels but the weight has %d",
        layer,
        scalerRow.length,
        cols);
    // sqrt in float of the float scaler, as the reference computes on float32 tensors.
    float[] norms = new float[cols];
    for (int j = 0; j < cols; j++) {
      ValidationException.check(
          Float.isFinite(scalerRow[j]) && scalerRow[j] >= 0,
          "Cannot prune layer %s with Wanda: activation statistic of channel %d is %s",
          layer,
          j,
          scalerRow[j]);
      norms[j] = (float) Math.sqrt(scalerRow[j]);
    }
    float[] w = weights.values();
    Mask.Builder mask = Mask.builder(rows, cols);
    if (group == Group.MATRIX && !target.isStructured()) {
      float[] scores = new float[w.length];
      RowParallel.forEach(rows, threads, (start, end) -> {
        for (int r = start; r < end; r++) {
          score(w, r * cols, norms, scores, r * cols, cols);
        }
      });
      if (target.ratio() > 0 && w.length > 0) {
        float threshold = new Selection().kthSmallest(scores, 0, scores.length, (long) (w.length * target.ratio()));
        for (int i = 0; i < scores.length; i++) {
          if (scores[i] <= threshold) {
            mask.prune(i / cols, i % cols);
          }
        }
      }
      return Magnitude.applied(mask.build(), w);
    }
    int perRow = (int) (cols * target.ratio());
    RowParallel.forEach(rows, threads, (start, end) -> {
      Selection selection = new Selection();
      float[] rowScores = new float[cols];
      for (int r = start; r < end; r++) {
        score(w, r * cols, norms, rowScores, 0, cols);
        if (target.isStructured()) {
          for (int g = 0; g < cols; g += target.groupSize()) {
            Selection.pruneLowestInGroup(rowScores, 0, g, g + target.groupSize(), target.prunedPerGroup(), mask, r);
          }
        } else {
          selection.pruneLowest(rowScores, 0, cols, perRow, mask, r);
        }
      }
    });
    return Magnitude.applied(mask.build(), w);
  }

  /** S = |W| * sqrt(scaler_row) for one row; + 0f turns -0 into +0 so ties compare as equal. */
  private static void score(float[] w, int from, float[] norms, float[] scores, int to, int cols) {
    for (int j = 0; j < cols; j++) {
      scores[to + j] = Math.abs(w[from + j]) * norms[j] + 0f;
    }
  }
}
