package dev.sparkprune.scoring.linalg;

import dev.ludovic.netlib.blas.BLAS;
import dev.ludovic.netlib.blas.JavaBLAS;
import dev.ludovic.netlib.lapack.JavaLAPACK;
import dev.ludovic.netlib.lapack.LAPACK;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.netlib.util.intW;

/**
 * BLAS and LAPACK through dev.ludovic.netlib, as Spark MLlib uses them. netlib loads whatever
 * {@code libblas.so.3} resolves to; where Debian's OpenBLAS is installed we point it there
 * explicitly, because the reference {@code libblas3}, if it wins the alternatives, is ~40x slower
 * than OpenBLAS. Without a native library netlib falls back to its Java implementation: correct,
 * slower.
 */
public final class NetlibLinearAlgebra implements LinearAlgebra {
  private static final List<String> OPENBLAS_DIRECTORIES =
      List.of(
          "/usr/lib/x86_64-linux-gnu/openblas-pthread",
          "/usr/lib/aarch64-linux-gnu/openblas-pthread",
          "/usr/lib64/openblas-pthreads",
          "/usr/lib/openblas-pthread");

  private static volatile NetlibLinearAlgebra defaultInstance;

  private final BLAS blas;
  private final LAPACK lapack;

  private NetlibLinearAlgebra(BLAS blas, LAPACK lapack) {
    this.blas = blas;
    this.lapack = lapack;
  }

  /** Native BLAS/LAPACK where they load, Java otherwise. */
  public static NetlibLinearAlgebra defaultInstance() {
    if (defaultInstance == null) {
      synchronized (NetlibLinearAlgebra.class) {
        if (defaultInstance == null) {
          preferOpenBlas();
          defaultInstance = new NetlibLinearAlgebra(BLAS.getInstance(), LAPACK.getInstance());
        }
      }
    }
    return defaultInstance;
  }

  /** The pure-Java implementations, whatever is installed: for tests and fallback figures. */
  public static NetlibLinearAlgebra javaOnly() {
    return new NetlibLinearAlgebra(JavaBLAS.getInstance(), JavaLAPACK.getInstance());
  }

  /** Sets netlib's library paths to OpenBLAS when found and the user set none. */
  static void preferOpenBlas() {
    for (String directory : OPENBLAS_DIRECTORIES) {
      Path blasPath = Path.of(directory, "libblas.so.3");
      Path lapackPath = Path.of(directory, "liblapack.so.3");
      if (Files.isReadable(blasPath) && Files.isReadable(lapackPath)) {
        setIfAbsent("dev.ludovic.netlib.blas.nativeLibPath", blasPath.toString());
        setIfAbsent("dev.ludovic.netlib.lapack.nativeLibPath", lapackPath.toString());
        return;
      }
    }
  }

  private static void setIfAbsent(String key, String value) {
    if (System.getProperty(key) == null && System.getProperty(key.replace("nativeLibPath", "nativeLib")) == null) {
      System.setProperty(key, value);
    }
  }

  public boolean isNative() {
    return !(blas instanceof JavaBLAS);
  }

  @Override
  public String description() {
    String kind = isNative() ? "native" : "java";
    String path = System.getProperty("dev.ludovic.netlib.blas.nativeLibPath", "libblas.so.3");
    return kind + ": BLAS " + blas.getClass().getSimpleName() + (isNative() ? " (" + path + ")" : "")
        + ", LAPACK " + lapack.getClass().getSimpleName();
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
  public void gramLower(int n, int k, float[] x, int xOffset, float[] c) {
    if (n == 0) {
      return;
    }
    // Row-major X [k x n] is column-major X^T [n x k]; column-major upper of X^T X is row-major lower.
    blas.ssyrk("U", "N", n, k, 1f, x, xOffset, n, 0f, c, 0, n);
  }

  @Override
  public boolean choleskyUpper(double[] a, int n) {
    if (n == 0) {
      return true;
    }
    intW info = new intW(0);
    // Column-major lower L (L L^T = A) read row-major is U = L^T with U^T U = A.
    lapack.dpotrf("L", n, a, n, info);
    if (info.val != 0) {
      return false;
    }
    for (int i = 1; i < n; i++) {
      for (int j = 0; j < i; j++) {
        a[i * n + j] = 0;
      }
    }
    return true;
  }

  @Override
  public boolean invertSpd(double[] a, int n) {
    if (n == 0) {
      return true;
    }
    intW info = new intW(0);
    lapack.dpotrf("L", n, a, n, info);
    if (info.val != 0) {
      return false;
    }
    lapack.dpotri("L", n, a, n, info);
    if (info.val != 0) {
      return false;
    }
    // dpotri fills the column-major lower triangle (row-major upper); mirror it.
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < i; j++) {
        a[i * n + j] = a[j * n + i];
      }
    }
    return true;
  }
}
