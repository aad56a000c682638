package dev.sparkprune.scoring.linalg;

import dev.ludovic.netlib.blas.BLAS;
import dev.ludovic.netlib.blas.JavaBLAS;
import dev.ludovic.netlib.lapack.JavaLAPACK;
import dev.ludovic.netlib.lapack.LAPACK;
import org.netlib.util.intW;

/**
 * BLAS and LAPACK through dev.ludovic.netlib, as Spark MLlib uses them. {@link NativeLibraries}
 * decides first which native library netlib may load: OpenBLAS (or another optimized BLAS) by
 * absolute path, never the reference {@code libblas3}, which is slower than netlib's own Java
 * code; without one netlib runs Java, correct and slower.
 */
public final class NetlibLinearAlgebra implements LinearAlgebra {
  /** Tile edge of the blocked X^T X; large enough for GEMM efficiency, small enough to skip the upper half. */
  private static final int GRAM_TILE = 512;

  /** netlib announces its choice at INFO through java.util.logging; we say it once, with the reason. */
  private static final java.util.logging.Logger NETLIB_LOGGER = java.util.logging.Logger.getLogger("dev.ludovic.netlib");

  private static final System.Logger LOG = System.getLogger(NetlibLinearAlgebra.class.getName());

  private static volatile NetlibLinearAlgebra defaultInstance;

  private final BLAS blas;
  private final LAPACK lapack;
  private final String reason;

  private NetlibLinearAlgebra(BLAS blas, LAPACK lapack, String reason) {
    this.blas = blas;
    this.lapack = lapack;
    this.reason = reason;
  }

  /** Native BLAS/LAPACK where an optimized library loads, Java otherwise; logged once per JVM. */
  public static NetlibLinearAlgebra defaultInstance() {
    if (defaultInstance == null) {
      synchronized (NetlibLinearAlgebra.class) {
        if (defaultInstance == null) {
          NativeLibraries.Choice choice = NativeLibraries.chooseForThisMachine();
          NativeLibraries.apply(choice);
          NETLIB_LOGGER.setLevel(java.util.logging.Level.WARNING);
          NetlibLinearAlgebra instance = new NetlibLinearAlgebra(BLAS.getInstance(), LAPACK.getInstance(), choice.reason());
          LOG.log(System.Logger.Level.INFO, "BLAS/LAPACK: " + instance.description());
          defaultInstance = instance;
        }
      }
    }
    return defaultInstance;
  }

  /** The pure-Java implementations, whatever is installed: for tests and fallback figures. */
  public static NetlibLinearAlgebra javaOnly() {
    return new NetlibLinearAlgebra(JavaBLAS.getInstance(), JavaLAPACK.getInstance(), "asked for Java");
  }

  public boolean isNative() {
    return !(blas instanceof JavaBLAS);
  }

  @Override
  public String description() {
    String kind = isNative() ? "native" : "java";
    String path = System.getProperty(NativeLibraries.BLAS_PATH, "libblas.so.3");
    String coreType = System.getenv("OPENBLAS_CORETYPE");
    return kind + ": BLAS " + blas.getClass().getSimpleName()
        + (isNative() ? " (" + path + (coreType == null ? "" : ", OPENBLAS_CORETYPE=" + coreType) + ")" : "")
        + ", LAPACK " + lapack.getClass().getSimpleName() + "; " + reason;
  }

  @Override
  public void gemm(
      int m, int n, int k, float alpha, float[] a, int aOffset, int lda, float[] b, int bOffset, int ldb,
      float beta, float[] c, int cOffset, int ldc) {
    if (m == 0 || n == 0) {
      return;
    }
    // Row-major C = A B is column-major C^T = B^T A^T: swap the operands, no transposes.
    blas.sgemm("N", "N", n, m, k, alpha, b, bOffset, ldb, a, aOffset, lda, beta, c, cOffset, ldc);
  }

  @Override
  public void gemmTransposedB(
      int m, int n, int k, float alpha, float[] a, int aOffset, int lda, float[] b, int bOffset, int ldb,
      float beta, float[] c, int cOffset, int ldc) {
    if (m == 0 || n == 0) {
      return;
    }
    // Row-major C = A B^T is column-major C^T = B A^T, with row-major B read as column-major B^T.
    blas.sgemm("T", "N", n, m, k, alpha, b, bOffset, ldb, a, aOffset, lda, beta, c, cOffset, ldc);
  }

  /**
   * X^T X as GEMMs over the lower-triangle tiles only: BLAS syrk runs far below gemm speed in
   * OpenBLAS on this kind of machine, and the tiles do half of a full GEMM's work.
   */
  @Override
  public void gramLower(int n, int k, float[] x, int xOffset, float[] c) {
    for (int i0 = 0; i0 < n; i0 += GRAM_TILE) {
      int rows = Math.min(GRAM_TILE, n - i0);
      for (int j0 = 0; j0 <= i0; j0 += GRAM_TILE) {
        int cols = Math.min(GRAM_TILE, n - j0);
        // Row-major C[i0.., j0..] is column-major M (cols x rows, ld n) = X[:, j0..]^T-cols times X[:, i0..].
        blas.sgemm("N", "T", cols, rows, k, 1f, x, xOffset + j0, n, x, xOffset + i0, n, 0f, c, i0 * n + j0, n);
      }
    }
  }

  /**
   * With J the reversal permutation, factor J A J = M M^T (lower M); then V = J M J is upper with
   * A = V V^T, so A^-1 = V^-T V^-1 and U = V^-1 is the upper Cholesky factor of A^-1 (unique
   * with a positive diagonal). One potrf and one trtri: half the flops of potrf + potri + potrf,
   * and no explicit inverse.
   */
  @Override
  public boolean upperCholeskyOfInverse(double[] a, int n) {
    if (n == 0) {
      return true;
    }
    int size = n * n;
    // Reversing rows and columns of a row-major matrix reverses its flat array.
    reverse(a, size);
    intW info = new intW(0);
    // Column-major upper factor = row-major lower M with M M^T = J A J.
    lapack.dpotrf("U", n, a, n, info);
    if (info.val != 0) {
      return false;
    }
    zeroStrictUpper(a, n);
    reverse(a, size);
    // Now a is row-major upper V (column-major lower); invert it in place.
    lapack.dtrtri("L", "N", n, a, n, info);
    if (info.val != 0) {
      return false;
    }
    return true;
  }

  /** LAPACK's dposv (potrf, then potrs) on B transposed to column-major and back. */
  @Override
  public boolean choleskySolve(double[] a, int n, double[] b, int columns) {
    if (n == 0 || columns == 0) {
      return true;
    }
    double[] columnMajor = new double[n * columns];
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < columns; c++) {
        columnMajor[c * n + i] = b[i * columns + c];
      }
    }
    intW info = new intW(0);
    // A is symmetric: its row-major array is also its column-major one.
    lapack.dposv("U", n, columns, a, n, columnMajor, n, info);
    if (info.val != 0) {
      return false;
    }
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < columns; c++) {
        b[i * columns + c] = columnMajor[c * n + i];
      }
    }
    return true;
  }

  private static void reverse(double[] a, int size) {
    for (int i = 0, j = size - 1; i < j; i++, j--) {
      double swap = a[i];
      a[i] = a[j];
      a[j] = swap;
    }
  }

  private static void zeroStrictUpper(double[] a, int n) {
    for (int i = 0; i < n; i++) {
      java.util.Arrays.fill(a, i * n + i + 1, (i + 1) * n, 0.0);
    }
  }
}
