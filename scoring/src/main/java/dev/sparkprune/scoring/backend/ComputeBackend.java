package dev.sparkprune.scoring.backend;

import dev.sparkprune.scoring.linalg.LinearAlgebra;

/**
 * Where a task's numerics run: the numeric building blocks of the pruning methods, as plain
 * array operations that know nothing of the methods. The methods ({@code scoring.methods}) are
 * written against these blocks; a backend never calls a method.
 *
 * <ul>
 *   <li>dense linear algebra ({@link #linearAlgebra()}): GEMM, the gram matrix X^T X (SYRK) and
 *       the upper Cholesky factor of an inverse;
 *   <li>selection: the k-th smallest value of an array, and batched per-row selection of the
 *       lowest scores (whole rows, or every group of M consecutive columns);
 *   <li>a blocked column sweep ({@link ColumnSweep}): W held on the backend while a caller
 *       updates one block of columns at a time and the backend applies the trailing update
 *       W[:, i2:] -= E F[i1:i2, i2:] (the lazy batch update of OBS solvers).
 * </ul>
 *
 * <p>{@link CpuBackend} is the default; a CUDA backend is built with the {@code cuda} Maven
 * profile and found through {@link ComputeBackendProvider}. Selection is exact, so every backend
 * must give the same keep bits for the same scores; float sums may differ in the last bits
 * between BLAS libraries, so updated weights agree to a tolerance, not bit for bit, across
 * backends.
 */
public interface ComputeBackend {
  /** Fills {@code scores[0, cols)} with the scores of one row. */
  @FunctionalInterface
  interface RowScorer {
    void score(int row, float[] scores);
  }

  /**
   * Receives one row's keep bits (1 = kept, {@link dev.sparkprune.tensorio.mask.Mask}'s row
   * layout). The array is scratch, reused once this returns; rows may arrive concurrently from
   * several threads, each row once.
   */
  @FunctionalInterface
  interface RowSink {
    void accept(int row, byte[] keepBits);
  }

  /** What runs the kernels, for logs and the report: "cpu: native OpenBLAS ...", "cuda: GPU 0 ...". */
  String description();

  /** GEMM, the gram matrix (SYRK) and the Cholesky factor of an inverse; the forward pass and calibration use them too. */
  LinearAlgebra linearAlgebra();

  /** The value of 0-based rank {@code k} among {@code values[from, to)}; no NaNs allowed. */
  float kthSmallest(float[] values, int from, int to, long k);

  /**
   * For each of {@code rows} rows of {@code cols} scores: the {@code pruned} lowest scores are
   * pruned, ties toward the lower column (as a stable ascending sort orders them), the rest kept.
   * Rows run on up to {@code threads} threads.
   */
  void pruneLowestPerRow(int rows, int cols, RowScorer scorer, int pruned, RowSink sink, int threads);

  /**
   * As {@link #pruneLowestPerRow}, within every group of {@code groupSize} consecutive columns
   * of a row (N:M): the {@code pruned} lowest of each group, ties toward the lower column.
   */
  void pruneLowestPerGroup(int rows, int cols, RowScorer scorer, int pruned, int groupSize, RowSink sink, int threads);

  /**
   * Opens a column sweep over row-major {@code w} [rows x cols], which the sweep may take over
   * and modify, with the right-hand factor {@code factor} [cols x cols] of its trailing update.
   */
  ColumnSweep openColumnSweep(float[] w, int rows, int cols, float[] factor);
}
