package dev.sparkprune.scoring.linalg;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.SplittableRandom;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/** The row-major wrappers against direct loops, on native BLAS (where installed) and Java. */
class TestLinearAlgebra {
  private static final List<LinearAlgebra> BACKENDS = List.of(NetlibLinearAlgebra.defaultInstance(), NetlibLinearAlgebra.javaOnly());

  private static float[] random(int count, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) (random.nextDouble() - 0.5);
    }
    return values;
  }

  @Test
  void gemmOnRowMajorSubmatrices() {
    int m = 7;
    int n = 5;
    int k = 9;
    int lda = 11;
    int ldb = 6;
    int ldc = 8;
    float[] a = random(2 + m * lda, 1);
    float[] b = random(3 + k * ldb, 2);
    for (LinearAlgebra linalg : BACKENDS) {
      float[] c = random(1 + m * ldc, 3);
      float[] expected = c.clone();
      for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
          double sum = 0;
          for (int p = 0; p < k; p++) {
            sum += (double) a[2 + i * lda + p] * b[3 + p * ldb + j];
          }
          expected[1 + i * ldc + j] = (float) (0.5 * expected[1 + i * ldc + j] - 2 * sum);
        }
      }
      linalg.gemm(m, n, k, -2f, a, 2, lda, b, 3, ldb, 0.5f, c, 1, ldc);
      for (int i = 0; i < c.length; i++) {
        assertThat(c[i]).as("%s c[%d]", linalg.description(), i).isCloseTo(expected[i], Offset.offset(1e-5f));
      }
    }
  }

  @Test
  void gramLowerEqualsXTransposeXForWideAndNarrowInputs() {
    for (int n : new int[] {3, 70, 600}) {
      int k = 33;
      float[] x = random(5 + k * n, n);
      for (LinearAlgebra linalg : BACKENDS) {
        float[] c = new float[n * n];
        linalg.gramLower(n, k, x, 5, c);
        for (int i = 0; i < n; i += Math.max(1, n / 37)) {
          for (int j = 0; j <= i; j++) {
            double sum = 0;
            for (int t = 0; t < k; t++) {
              sum += (double) x[5 + t * n + i] * x[5 + t * n + j];
            }
            assertThat((double) c[i * n + j]).as("%s n=%d c[%d][%d]", linalg.description(), n, i, j).isCloseTo(sum, Offset.offset(1e-4));
          }
        }
      }
    }
  }

  @Test
  void upperCholeskyOfInverseSatisfiesUTransposeUTimesAEqualsIdentity() {
    int n = 150;
    float[] x = random(2 * n * n, 4);
    double[] a = new double[n * n];
    for (int t = 0; t < 2 * n; t++) {
      for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
          a[i * n + j] += (double) x[t * n + i] * x[t * n + j];
        }
      }
    }
    for (LinearAlgebra linalg : BACKENDS) {
      double[] u = a.clone();
      assertThat(linalg.upperCholeskyOfInverse(u, n)).isTrue();
      for (int i = 0; i < n; i++) {
        assertThat(u[i * n + i]).isPositive();
        for (int j = 0; j < i; j++) {
          assertThat(u[i * n + j]).isZero();
        }
      }
      // (U^T U) A = I
      for (int i = 0; i < n; i += 7) {
        for (int j = 0; j < n; j += 5) {
          double sum = 0;
          for (int p = 0; p < n; p++) {
            double inverse = 0;
            for (int q = 0; q <= Math.min(i, p); q++) {
              inverse += u[q * n + i] * u[q * n + p];
            }
            sum += inverse * a[p * n + j];
          }
          assertThat(sum).as("%s [%d][%d]", linalg.description(), i, j).isCloseTo(i == j ? 1 : 0, Offset.offset(1e-8));
        }
      }
      double[] indefinite = {1, 2, 2, 1};
      assertThat(linalg.upperCholeskyOfInverse(indefinite, 2)).isFalse();
    }
  }
}
