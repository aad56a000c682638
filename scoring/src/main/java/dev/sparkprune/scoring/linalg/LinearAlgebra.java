package dev.sparkprune.scoring.linalg;

/**
 * The dense kernels pruning needs, on row-major float matrices and symmetric double matrices.
 * Implementations: {@link NetlibLinearAlgebra} (native OpenBLAS when present, Java otherwise).
 */
public interface LinearAlgebra {
  /** What backs this instance, for logs and reports: "native: OpenBLAS ...", "java: ...". */
  String description();

  /**
   * {@code C = alpha * A * B + beta * C} for row-major A [m x k], B [k x n], C [m x n] with the
   * given offsets and leading dimensions (row strides).
   */
  void gemm(
      int m, int n, int k, float alpha, float[] a, int aOffset, int lda, float[] b, int bOffset, int ldb,
      float beta, float[] c, int cOffset, int ldc);

  /**
   * {@code C = alpha * A * B^T + beta * C} for row-major A [m x k], B [n x k], C [m x n]: a
   * linear layer Y = X W^T with W stored [out, in].
   */
  void gemmTransposedB(
      int m, int n, int k, float alpha, float[] a, int aOffset, int lda, float[] b, int bOffset, int ldb,
      float beta, float[] c, int cOffset, int ldc);

  /**
   * {@code C = X^T X} for row-major X [k x n] (k samples of n channels). Writes the lower
   * triangle of row-major C [n x n] (entries {@code c[i * n + j]} with {@code j <= i}).
   */
  void gramLower(int n, int k, float[] x, int xOffset, float[] c);

  /**
   * For a symmetric positive definite A, in place: on return the upper triangle (row-major) of
   * {@code a} holds U with {@code U^T U = A^-1} (SparseGPT's Hinv), the strict lower triangle is
   * zero. Returns false, leaving {@code a} undefined, if A is not positive definite.
   */
  boolean upperCholeskyOfInverse(double[] a, int n);

  /**
   * Solves {@code A X = B} for a symmetric positive definite A [n x n] (row-major, overwritten)
   * and row-major B [n x columns], which holds X on return. Returns false, leaving both
   * undefined, if A is not positive definite. The default goes through
   * {@link #upperCholeskyOfInverse}: X = U^T (U B) with U^T U = A^-1.
   */
  default boolean choleskySolve(double[] a, int n, double[] b, int columns) {
    if (!upperCholeskyOfInverse(a, n)) {
      return false;
    }
    double[] ub = new double[n * columns];
    for (int i = 0; i < n; i++) {
      for (int k = i; k < n; k++) {
        double u = a[i * n + k];
        for (int c = 0; c < columns; c++) {
          ub[i * columns + c] += u * b[k * columns + c];
        }
      }
    }
    java.util.Arrays.fill(b, 0, n * columns, 0.0);
    for (int k = 0; k < n; k++) {
      for (int i = k; i < n; i++) {
        double u = a[k * n + i];
        for (int c = 0; c < columns; c++) {
          b[i * columns + c] += u * ub[k * columns + c];
        }
      }
    }
    return true;
  }
}
