package dev.sparkprune.scoring.methods;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * ADMM against the exact optimum: per row, the normal equations of the damped objective
 * (w_hat - w) H_d (w_hat - w)^T restricted to the kept columns, solved directly in double.
 */
class TestAdmm {
  private static final ComputeBackend CPU = CpuBackend.defaultInstance();

  /** A small layer: correlated inputs (tokens x cols) so the update has something to fix. */
  private record Layer(Weights weights, double[] xtx) {}

  private static Layer layer(int rows, int cols, int tokens, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) random.nextGaussian();
    }
    double[] x = new double[tokens * cols];
    for (int t = 0; t < tokens; t++) {
      double shared = random.nextGaussian();
      for (int j = 0; j < cols; j++) {
        // Channel scales from 0.2 to 5 and a shared factor: off-diagonal X^T X, uneven norms.
        x[t * cols + j] = (0.2 + 4.8 * j / cols) * (random.nextGaussian() + 0.7 * shared);
      }
    }
    double[] xtx = new double[cols * cols];
    for (int t = 0; t < tokens; t++) {
      for (int i = 0; i < cols; i++) {
        for (int j = 0; j < cols; j++) {
          xtx[i * cols + j] += x[t * cols + i] * x[t * cols + j];
        }
      }
    }
    return new Layer(Weights.of(rows, cols, w), xtx);
  }

  /** H_d = XX + rho0 diag(norm^2), the reference's damping written in the original space. */
  private static double[] dampedHessian(double[] xtx, int n, double percdamp) {
    double[] norm = new double[n];
    double mean = 0;
    for (int j = 0; j < n; j++) {
      norm[j] = Math.sqrt(xtx[j * n + j]) + 1e-8;
      mean += xtx[j * n + j] / (norm[j] * norm[j]) / n;
    }
    double[] h = xtx.clone();
    for (int j = 0; j < n; j++) {
      h[j * n + j] += percdamp * mean * norm[j] * norm[j];
    }
    return h;
  }

  /** Per row: H_KK w_K = (H w)_K by Gaussian elimination with partial pivoting, in double. */
  private static double[] exactOptimum(Weights weights, Mask mask, double[] h) {
    int rows = weights.rows();
    int n = weights.cols();
    double[] out = new double[rows * n];
    for (int r = 0; r < rows; r++) {
      int[] kept = new int[n];
      int k = 0;
      for (int j = 0; j < n; j++) {
        if (mask.isKept(r, j)) {
          kept[k++] = j;
        }
      }
      double[][] system = new double[k][k + 1];
      for (int a = 0; a < k; a++) {
        for (int b = 0; b < k; b++) {
          system[a][b] = h[kept[a] * n + kept[b]];
        }
        double rhs = 0;
        for (int j = 0; j < n; j++) {
          rhs += h[kept[a] * n + j] * weights.get(r, j);
        }
        system[a][k] = rhs;
      }
      double[] solution = solve(system, k);
      for (int a = 0; a < k; a++) {
        out[r * n + kept[a]] = solution[a];
      }
    }
    return out;
  }

  private static double[] solve(double[][] m, int k) {
    for (int c = 0; c < k; c++) {
      int pivot = c;
      for (int r = c + 1; r < k; r++) {
        pivot = Math.abs(m[r][c]) > Math.abs(m[pivot][c]) ? r : pivot;
      }
      double[] swap = m[c];
      m[c] = m[pivot];
      m[pivot] = swap;
      for (int r = c + 1; r < k; r++) {
        double factor = m[r][c] / m[c][c];
        for (int j = c; j <= k; j++) {
          m[r][j] -= factor * m[c][j];
        }
      }
    }
    double[] x = new double[k];
    for (int r = k - 1; r >= 0; r--) {
      double sum = m[r][k];
      for (int j = r + 1; j < k; j++) {
        sum -= m[r][j] * x[j];
      }
      x[r] = sum / m[r][r];
    }
    return x;
  }

  /** sum over rows of (w_hat - w) H (w_hat - w)^T. */
  private static double objective(Weights weights, double[] updated, double[] h) {
    int n = weights.cols();
    double total = 0;
    for (int r = 0; r < weights.rows(); r++) {
      for (int i = 0; i < n; i++) {
        double di = updated[r * n + i] - weights.get(r, i);
        for (int j = 0; j < n; j++) {
          total += di * h[i * n + j] * (updated[r * n + j] - weights.get(r, j));
        }
      }
    }
    return total;
  }

  private static double[] toDoubles(float[] values) {
    double[] out = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = values[i];
    }
    return out;
  }

  private static Mask wandaMask(Layer layer, SparsityTarget target) {
    int n = layer.weights().cols();
    float[] scaler = new float[n];
    for (int j = 0; j < n; j++) {
      scaler[j] = (float) layer.xtx()[j * n + j];
    }
    return Wanda.prune("W", layer.weights(), scaler, target, Wanda.Group.ROW, CPU, 1).mask();
  }

  @Test
  void convergedUpdateEqualsTheExactLeastSquaresOptimum() {
    for (double percdamp : new double[] {0.0, 0.1}) {
      Layer layer = layer(12, 32, 200, 7);
      Mask mask = wandaMask(layer, SparsityTarget.unstructured(0.5));
      PruneResult result = Admm.update("W", layer.weights(), mask, layer.xtx(), new Admm.Settings(600, percdamp, 1.0, 15), CPU, 2);
      double[] optimum = exactOptimum(layer.weights(), mask, dampedHessian(layer.xtx(), 32, percdamp));
      assertThat(result.mask()).isEqualTo(mask);
      float[] updated = result.weights();
      for (int i = 0; i < updated.length; i++) {
        // Float iterations on a problem scaled to unit diagonal: agreement to a few float ulps of the weights.
        assertThat((double) updated[i]).as("percdamp %s entry %d", percdamp, i).isCloseTo(optimum[i], org.assertj.core.data.Offset.offset(2e-3));
        if (!mask.isKept(i / 32, i % 32)) {
          assertThat(updated[i]).isZero();
        }
      }
    }
  }

  @Test
  void defaultTwentyIterationsComeWithinOnePercentOfTheOptimalLoss() {
    for (SparsityTarget target : new SparsityTarget[] {SparsityTarget.unstructured(0.5), SparsityTarget.unstructured(0.7),
        SparsityTarget.nOfM(2, 4)}) {
      Layer layer = layer(16, 48, 300, 11);
      Mask mask = wandaMask(layer, target);
      double[] h = dampedHessian(layer.xtx(), 48, Admm.DEFAULTS.percdamp());
      double optimal = objective(layer.weights(), exactOptimum(layer.weights(), mask, h), h);
      float[] masked = layer.weights().values().clone();
      mask.applyTo(masked);
      double maskedOnly = objective(layer.weights(), toDoubles(masked), h);
      PruneResult result = Admm.update("W", layer.weights(), mask, layer.xtx(), Admm.DEFAULTS, CPU, 1);
      double admm = objective(layer.weights(), toDoubles(result.weights()), h);
      assertThat(admm).as("%s: optimum %s, masked %s", target, optimal, maskedOnly)
          .isLessThanOrEqualTo(optimal * 1.01)
          .isGreaterThanOrEqualTo(optimal * (1 - 1e-6));
      assertThat(maskedOnly).isGreaterThan(optimal * 1.2);
    }
  }

  @Test
  void gradualMaskMeetsTheTargetExactlyAndItsWeightsAreOptimalForIt() {
    for (SparsityTarget target : new SparsityTarget[] {SparsityTarget.unstructured(0.5), SparsityTarget.nOfM(2, 4)}) {
      Layer layer = layer(10, 24, 200, 3);
      PruneResult result = Admm.gradual(
          "W", layer.weights(), target, Wanda.Group.ROW, layer.xtx(), new Admm.Settings(600, 0.1, 1.0, 15), CPU, 2);
      Mask mask = result.mask();
      for (int r = 0; r < 10; r++) {
        assertThat(mask.keptInRow(r)).isEqualTo(12);
        if (target.isStructured()) {
          for (int g = 0; g < 24; g += 4) {
            int kept = 0;
            for (int j = g; j < g + 4; j++) {
              kept += mask.isKept(r, j) ? 1 : 0;
            }
            assertThat(kept).as("row %d group %d", r, g).isEqualTo(2);
          }
        }
      }
      double[] optimum = exactOptimum(layer.weights(), mask, dampedHessian(layer.xtx(), 24, 0.1));
      for (int i = 0; i < optimum.length; i++) {
        assertThat((double) result.weights()[i]).isCloseTo(optimum[i], org.assertj.core.data.Offset.offset(2e-3));
      }
    }
  }

  @Test
  void rejectsBadSettingsAndShapes() {
    assertThatThrownBy(() -> new Admm.Settings(0, 0.1, 1, 15))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Invalid ADMM iterations 0");
    assertThatThrownBy(() -> new Admm.Settings(10, 0.1, 1, 15))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Invalid ADMM gradual steps 15: must be in [1, iterations = 10]");
    Layer layer = layer(4, 8, 20, 1);
    assertThatThrownBy(() -> Admm.update("L", layer.weights(), Mask.builder(4, 4).build(), layer.xtx(), Admm.DEFAULTS, CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Cannot update layer L with ADMM: the mask is [4, 4] but the weight is [4, 8]");
  }
}
