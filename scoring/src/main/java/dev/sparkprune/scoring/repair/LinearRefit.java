package dev.sparkprune.scoring.repair;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.ValidationException;

/**
 * Least-squares refits of one linear W [outputs x inputs] (row-major, as stored) from its
 * {@link LinearEquations}: X its input on the calibration tokens, E = target − X W^T the error to
 * remove. Both keep the tensor's shape, so the archive stays a standard one.
 *
 * <ul>
 *   <li>{@link #columns}: W' = W + Δ^T with Δ = (X^T X + λI)^-1 X^T E, the minimiser of
 *       ‖X W'^T − target‖² + λ‖W' − W‖² (ridge toward the current weights, so a direction the
 *       calibration tokens never excite keeps its weights);
 *   <li>{@link #outputMap}: ReplaceMe's linear map on the output, folded: with M = X W^T,
 *       T = I + Δ, Δ = (M^T M + λI)^-1 M^T E minimises ‖M T − target‖² + λ‖T − I‖², and
 *       M T = X W^T T = X (T^T W)^T, so W' = T^T W = W + Δ^T W is the same linear with T inside:
 *       no new tensor. M^T M = W (X^T X) W^T and M^T E = W (X^T E) come from the same sums.
 * </ul>
 *
 * <p>The residuals ‖E‖² before and ‖E − X(W' − W)^T‖² after are computed from the sums too:
 * ‖E‖² − ⟨Δ, C⟩ − λ‖Δ‖² with C the cross term the solve used ({@link #residual}).
 */
public final class LinearRefit {
  private LinearRefit() {}

  /** The refitted weights (same shape), the squared residual before and after, and the damping fraction used. */
  public record Refit(float[] weights, double errorBefore, double errorAfter, double damping) {}

  /** Refits every column of W: the minimiser of the damped squared error over the calibration tokens. */
  public static Refit columns(String what, float[] w, LinearEquations equations, double damping, LinearAlgebra linalg) {
    int rows = equations.outputs();
    int cols = equations.inputs();
    checkShape(what, w, rows, cols);
    double[] gram = equations.xtx();
    double[] cross = equations.xte();
    LeastSquares.Solution solution = LeastSquares.ridge(what, gram, cols, cross, rows, damping, linalg);
    double[] delta = solution.values();
    float[] out = new float[w.length];
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < cols; j++) {
        out[r * cols + j] = (float) (w[r * cols + j] + delta[j * rows + r]);
      }
    }
    double after = residual(equations.errorSquares(), cross, delta, solution.lambda());
    return new Refit(out, equations.errorSquares(), after, solution.damping());
  }

  /** ReplaceMe's map T [outputs x outputs] on the output, fitted and folded into W (see the class comment). */
  public static Refit outputMap(String what, float[] w, LinearEquations equations, double damping, LinearAlgebra linalg) {
    int rows = equations.outputs();
    int cols = equations.inputs();
    checkShape(what, w, rows, cols);
    double[] gram = equations.xtx();
    double[] cross = equations.xte();
    // W G [rows x cols], then M^T M = (W G) W^T [rows x rows] and M^T E = W C [rows x rows].
    double[] wg = new double[rows * cols];
    multiply(w, rows, cols, gram, cols, wg);
    double[] mtm = new double[rows * rows];
    for (int a = 0; a < rows; a++) {
      for (int b = 0; b < rows; b++) {
        double sum = 0;
        for (int j = 0; j < cols; j++) {
          sum += wg[a * cols + j] * w[b * cols + j];
        }
        mtm[a * rows + b] = sum;
      }
    }
    double[] mte = new double[rows * rows];
    multiply(w, rows, cols, cross, rows, mte);
    LeastSquares.Solution solution = LeastSquares.ridge(what, mtm, rows, mte, rows, damping, linalg);
    double[] delta = solution.values();
    // W' = W + Δ^T W: row a of W' adds Σ_b Δ[b][a] W[b].
    float[] out = new float[w.length];
    for (int a = 0; a < rows; a++) {
      double[] row = new double[cols];
      for (int j = 0; j < cols; j++) {
        row[j] = w[a * cols + j];
      }
      for (int b = 0; b < rows; b++) {
        double d = delta[b * rows + a];
        if (d != 0) {
          for (int j = 0; j < cols; j++) {
            row[j] += d * w[b * cols + j];
          }
        }
      }
      for (int j = 0; j < cols; j++) {
        out[a * cols + j] = (float) row[j];
      }
    }
    double after = residual(equations.errorSquares(), mte, delta, solution.lambda());
    return new Refit(out, equations.errorSquares(), after, solution.damping());
  }

  /** out [rows x n] = W [rows x cols] · B [cols x n], in double. */
  private static void multiply(float[] w, int rows, int cols, double[] b, int n, double[] out) {
    for (int r = 0; r < rows; r++) {
      for (int k = 0; k < cols; k++) {
        double x = w[r * cols + k];
        if (x != 0) {
          int bRow = k * n;
          int outRow = r * n;
          for (int c = 0; c < n; c++) {
            out[outRow + c] += x * b[bRow + c];
          }
        }
      }
    }
  }

  /**
   * ‖E − XΔ‖² = ‖E‖² − 2⟨Δ, C⟩ + ⟨Δ, GΔ⟩, and at the solution GΔ = C − λΔ, so it is
   * ‖E‖² − ⟨Δ, C⟩ − λ‖Δ‖²: O(n × m) instead of the O(n² × m) of forming GΔ.
   */
  static double residual(double errorSquares, double[] cross, double[] delta, double lambda) {
    double linear = 0;
    double squares = 0;
    for (int i = 0; i < delta.length; i++) {
      linear += delta[i] * cross[i];
      squares += delta[i] * delta[i];
    }
    return Math.max(0, errorSquares - linear - lambda * squares);
  }

  private static void checkShape(String what, float[] w, int rows, int cols) {
    ValidationException.check(
        w.length == (long) rows * cols, "Cannot refit %s: %d weights, expected %d x %d (the equations' outputs x inputs)", what, w.length, rows, cols);
  }
}
