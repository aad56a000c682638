package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.backend.Selection;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
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

  /**
   * Where W lives during the sweep. The block's columns come to the host for the mask choice and
   * the column sweep (so every backend chooses masks with this class's code); the lazy batch
   * update, the bulk of the flops, runs wherever W lives: in place on the host, or on a GPU.
   */
  public interface Workspace extends AutoCloseable {
    /** Copies W[:, i1:i1+count] into {@code block}, row-major [rows x count]. */
    void readBlock(int i1, int count, float[] block);

    /** Copies {@code block} back into W[:, i1:i1+count]. */
    void writeBlock(int i1, int count, float[] block);

    /** W[:, i2:] -= Err1 Hinv[i1:i2, i2:], with Err1 row-major [rows x (i2 - i1)]. */
    void lazyUpdate(float[] err1, int i1, int i2);

    /** The updated W, row-major [rows x cols]. */
    float[] weights();

    @Override
    void close();
  }

  /** Opens a workspace on W (row-major, may be taken over) and the float Hinv factor. */
  @FunctionalInterface
  public interface WorkspaceFactory {
    Workspace open(float[] w, int rows, int columns, float[] hinv);
  }

  /** W in a host array, updated in place with the given GEMM. */
  public static WorkspaceFactory onHost(LinearAlgebra linalg) {
    return (w, rows, columns, hinv) -> new Workspace() {
      @Override
      public void readBlock(int i1, int count, float[] block) {
        for (int r = 0; r < rows; r++) {
          System.arraycopy(w, r * columns + i1, block, r * count, count);
        }
      }

      @Override
      public void writeBlock(int i1, int count, float[] block) {
        for (int r = 0; r < rows; r++) {
          System.arraycopy(block, r * count, w, r * columns + i1, count);
        }
      }

      @Override
      public void lazyUpdate(float[] err1, int i1, int i2) {
        int count = i2 - i1;
        linalg.gemm(rows, columns - i2, count, -1f, err1, 0, count, hinv, i1 * columns + i2, columns, 1f, w, i2, columns);
      }

      @Override
      public float[] weights() {
        return w;
      }

      @Override
      public void close() {}
    };
  }

  /**
   * @param hessian H = (2 / nsamples) X^T X, row-major [cols x cols], not modified
   */
  public static PruneResult prune(
      String layer,
      Weights weights,
      double[] hessian,
      SparsityTarget target,
      double percdamp,
      int blockSize,
      LinearAlgebra linalg,
      int threads) {
    return prune(layer, weights, hessian, target, percdamp, blockSize, linalg, onHost(linalg), threads);
  }

  /**
   * As above, with Hinv factored by {@code linalg} and W held by {@code workspaces} (a GPU
   * backend passes its own for both).
   */
  public static PruneResult prune(
      String layer,
      Weights weights,
      double[] hessian,
      SparsityTarget target,
      double percdamp,
      int blockSize,
      LinearAlgebra linalg,
      WorkspaceFactory workspaces,
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
      factor = upperCholeskyOfInverse(h, columns, damping * meanDiagonal, linalg);
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
    Selection selection = new Selection();
    float[] pruned;
    try (Workspace workspace = workspaces.open(w, rows, columns, hinv)) {
      for (int i1 = 0; i1 < columns; i1 += blockSize) {
        int i2 = Math.min(i1 + blockSize, columns);
        int count = i2 - i1;
        workspace.readBlock(i1, count, w1);
        if (!target.isStructured() && target.ratio() > 0) {
          chooseBlockMask(w1, rows, i1, count, hinvDiagonal, target.ratio(), blockScores, selection, keep, columns);
        }
        final int blockStart = i1;
        RowParallel.forEach(rows, threads, (start, end) -> {
          float[] groupScores = target.isStructured() ? new float[columns] : null;
          for (int r = start; r < end; r++) {
            rowLosses[r] += sweepRow(w1, r, columns, blockStart, count, hinv, hinvDiagonal, target, keep, err1, groupScores);
          }
        });
        workspace.writeBlock(i1, count, w1);
        // W[:, i2:] -= Err1 Hinv[i1:i2, i2:]
        if (i2 < columns) {
          workspace.lazyUpdate(err1, i1, i2);
        }
      }
      pruned = workspace.weights();
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
      float[] scores, Selection selection, byte[] keep, int columns) {
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
    float threshold = selection.kthSmallest(scores, 0, numel, (long) (numel * sparsity));
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
