package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ColumnSweep;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.Selection;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;

/**
 * SparseGPT (Frantar and Alistarh, "SparseGPT: Massive Language Models Can Be Accurately Pruned
 * in One-Shot"), following the reference {@code fasterprune} step by step:
 *
 * <ol>
 *   <li>dead input channels (H_jj = 0) get H_jj = 1 and W[:, j] = 0;
 *   <li>damping: H += percdamp * mean(diag H) * I;
 *   <li>Hinv = the upper Cholesky factor of H^-1;
 *   <li>for each block of {@code blockSize} columns [i1, i2): choose the block's mask (unstructured:
 *       scores W1^2 / diag(Hinv1)^2 over the whole rows x block, threshold at index
 *       floor(numel * s) of the sorted scores, prune <= threshold); then column by column, q = w
 *       masked, err = (w - q) / d, and the remaining block columns get W1[:, i:] -= err Hinv1[i, i:]
 *       (the OBS update); N:M masks are chosen lazily at each group start on the updated weights;
 *   <li>lazy batch update: W[:, i2:] -= Err1 Hinv[i1:i2, i2:].
 * </ol>
 *
 * <p>The Cholesky work runs in double, the sweep in float as the reference does. If H + damping
 * is not positive definite, damping is raised tenfold up to {@link #MAX_DAMPING}, then the layer
 * fails: there is never a silent fallback to no update.
 *
 * <p>Rows are independent given the block masks, so the column sweep runs row-parallel; but the
 * unstructured block threshold spans all rows, so a layer is pruned as one matrix, not in row
 * ranges.
 */
public final class SparseGpt {
  /** The reference's damping fraction and block size. */
  public static final double DEFAULT_PERCDAMP = 0.01;

  public static final int DEFAULT_BLOCK_SIZE = 128;

  /** Retries multiply damping by 10 while it stays at or below this fraction of mean(diag H). */
  public static final double MAX_DAMPING = 1.0;

  private SparseGpt() {}

  /** SparseGPT as a method: H from the statistics, the given damping and block size. */
  public static Pruner pruner(double percdamp, int blockSize) {
    return (inputs, target, backend, threads) -> prune(
        inputs.layer(), inputs.weights(), inputs.requireStatistics("prune", "sparsegpt").hessian(), target, percdamp, blockSize,
        backend, threads);
  }

  /**
   * Prunes with the backend's blocks: the Cholesky factor of H^-1, the block threshold, and the
   * lazy batch update on a {@link ColumnSweep} that holds W where the backend computes. Each
   * block's columns come to the host for the mask choice and the column sweep.
   *
   * @param hessian H = (2 / nsamples) X^T X, row-major [cols x cols], not modified
   */
  public static PruneResult prune(
      String layer,
      Weights weights,
      double[] hessian,
      SparsityTarget target,
      double percdamp,
      int blockSize,
      ComputeBackend backend,
      int threads) {
    weights.checkFinite(layer, threads);
    target.checkFits(layer, weights.cols());
    int rows = weights.rows();
    int columns = weights.cols();
    ValidationException.check(
        hessian.length == (long) columns * columns,
        "Cannot prune layer %s with SparseGPT: the Hessian has %d entries, expected %d x %d",
        layer,
        hessian.length,
        columns,
        columns);
    ValidationException.check(blockSize > 0, "Invalid SparseGPT block size %d", blockSize);
    float[] w = weights.values().clone();

    double[] h = hessian.clone();
    double diagonalSum = 0;
    for (int j = 0; j < columns; j++) {
      double hjj = h[j * columns + j];
      ValidationException.check(
          Double.isFinite(hjj), "Cannot prune layer %s with SparseGPT: Hessian diagonal %d is %s", layer, j, hjj);
      if (hjj == 0) {
        h[j * columns + j] = 1;
        for (int r = 0; r < rows; r++) {
          w[r * columns + j] = 0;
        }
      }
      diagonalSum += h[j * columns + j];
    }
    for (double value : h) {
      ValidationException.check(Double.isFinite(value), "Cannot prune layer %s with SparseGPT: the Hessian holds %s", layer, value);
    }
    double meanDiagonal = columns == 0 ? 0 : diagonalSum / columns;

    double damping = percdamp;
    float[] factor = null;
    while (factor == null) {
      factor = upperCholeskyOfInverse(h, columns, damping * meanDiagonal, backend.linearAlgebra());
      if (factor == null) {
        damping *= 10;
        ValidationException.check(
            damping <= MAX_DAMPING * (1 + 1e-9),
            "Cannot prune layer %s with SparseGPT: H + damping is not positive definite even with damping %s x mean(diag H); "
                + "the calibration statistics are degenerate",
            layer,
            damping / 10);
      }
    }

    float[] hinv = factor;
    double[] rowLosses = new double[rows];
    int rowBytes = Mask.rowBytes(columns);
    byte[] keep = new byte[rows * rowBytes];
    for (int r = 0; r < rows; r++) {
      Selection.keepAll(columns, keep, r * rowBytes);
    }
    float[] hinvDiagonal = new float[columns];
    for (int j = 0; j < columns; j++) {
      hinvDiagonal[j] = hinv[j * columns + j];
    }
    float[] w1 = new float[rows * blockSize];
    float[] err1 = new float[rows * blockSize];
    float[] blockScores = target.isStructured() ? null : new float[rows * blockSize];
    float[] pruned;
    try (ColumnSweep sweep = backend.openColumnSweep(w, rows, columns, hinv)) {
      for (int i1 = 0; i1 < columns; i1 += blockSize) {
        int i2 = Math.min(i1 + blockSize, columns);
        int count = i2 - i1;
        sweep.readBlock(i1, count, w1);
        if (!target.isStructured() && target.ratio() > 0) {
          chooseBlockMask(w1, rows, i1, count, hinvDiagonal, target.ratio(), blockScores, backend, keep, columns);
        }
        final int blockStart = i1;
        RowParallel.forEach(rows, threads, (start, end) -> {
          float[] groupScores = target.isStructured() ? new float[columns] : null;
          for (int r = start; r < end; r++) {
            rowLosses[r] += sweepRow(w1, r, columns, blockStart, count, hinv, hinvDiagonal, target, keep, err1, groupScores);
          }
        });
        sweep.writeBlock(i1, count, w1);
        // W[:, i2:] -= Err1 Hinv[i1:i2, i2:]
        if (i2 < columns) {
          sweep.updateRight(err1, i1, i2);
        }
      }
      pruned = sweep.result();
    }
    double loss = 0;
    for (double rowLoss : rowLosses) {
      loss += rowLoss;
    }
    return PruneResult.reconstructed(Mask.fromBits(rows, columns, keep), pruned, loss, damping);
  }

  /**
   * H + damp I, then its inverse, then the inverse's upper Cholesky factor as float; null when a
   * factorization fails (not positive definite).
   */
  private static float[] upperCholeskyOfInverse(double[] h, int columns, double damp, LinearAlgebra linalg) {
    double[] work = h.clone();
    for (int j = 0; j < columns; j++) {
      work[j * columns + j] += damp;
    }
    if (!linalg.upperCholeskyOfInverse(work, columns)) {
      return null;
    }
    float[] upper = new float[work.length];
    for (int i = 0; i < work.length; i++) {
      upper[i] = (float) work[i];
    }
    return upper;
  }

  /** Unstructured block mask: tmp = W1^2 / diag(Hinv1)^2 over rows x count, prune tmp <= thresh. */
  private static void chooseBlockMask(
      float[] w1, int rows, int i1, int count, float[] hinvDiagonal, double sparsity,
      float[] scores, ComputeBackend backend, byte[] keep, int columns) {
    int numel = rows * count;
    for (int r = 0; r < rows; r++) {
      for (int i = 0; i < count; i++) {
        float value = w1[r * count + i];
        float d = hinvDiagonal[i1 + i];
        scores[r * count + i] = value * value / (d * d) + 0f;
      }
    }
    if (numel == 0) {
      return;
    }
    float threshold = backend.kthSmallest(scores, 0, numel, (long) (numel * sparsity));
    for (int r = 0; r < rows; r++) {
      for (int i = 0; i < count; i++) {
        if (scores[r * count + i] <= threshold) {
          Selection.prune(keep, r * Mask.rowBytes(columns), i1 + i);
        }
      }
    }
  }

  /**
   * The column sweep of one row within block [i1, i1 + count) of W1 (row-major [rows x count]):
   * returns the row's loss, leaves q in W1 and err in err1[r, :].
   */
  private static double sweepRow(
      float[] w, int r, int columns, int i1, int count, float[] hinv, float[] hinvDiagonal,
      SparsityTarget target, byte[] keep, float[] err1, float[] groupScores) {
    int row = r * count;
    int keepOffset = r * Mask.rowBytes(columns);
    double loss = 0;
    for (int i = 0; i < count; i++) {
      int column = i1 + i;
      if (groupScores != null && i % target.groupSize() == 0) {
        // N:M chosen at the group start on the updated weights; the group ends at the block edge.
        int groupEnd = Math.min(i + target.groupSize(), count);
        for (int g = i; g < groupEnd; g++) {
          float value = w[row + g];
          float d = hinvDiagonal[i1 + g];
          groupScores[i1 + g] = value * value / (d * d) + 0f;
        }
        Selection.pruneLowestInGroup(groupScores, 0, column, i1 + groupEnd, target.prunedPerGroup(), keep, keepOffset);
      }
      float weight = w[row + i];
      float q = Selection.isKept(keep, keepOffset, column) ? weight : 0f;
      float d = hinvDiagonal[column];
      float difference = weight - q;
      loss += difference * difference / (d * d);
      float err = difference / d;
      err1[r * count + i] = err;
      w[row + i] = q;
      if (err != 0f) {
        // W1[:, i+1:] -= err * Hinv1[i, i+1:]
        int hinvRow = column * columns + column;
        for (int j = i + 1; j < count; j++) {
          w[row + j] -= err * hinv[hinvRow + j - i];
        }
      }
    }
    return loss / 2;
  }
}
