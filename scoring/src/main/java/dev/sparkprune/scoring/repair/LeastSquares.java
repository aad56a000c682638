package dev.sparkprune.scoring.repair;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.ValidationException;

/**
 * Damped least squares in closed form: Z = (G + λI)^-1 R for a Gram matrix G [n x n] and a
 * right-hand side R [n x m], by one Cholesky solve of the linear-algebra backend.
 *
 * <p>Damping rule (SparseGPT's, which the prune job uses too): λ = fraction × mean(diag G),
 * fraction {@link #DAMPING_DEFAULT} = 0.01. It keeps the solve well posed where inputs are
 * collinear or dead (a channel that never fires has G_jj = 0) and is scale-free: the same
 * fraction fits a layer whatever the size of its activations. Where G + λI is still not
 * positive definite (rounding on a near-singular G), the fraction grows ×10 up to
 * {@link #MAX_DAMPING}, as SparseGPT does, and the fraction used is reported.
 */
public final class LeastSquares {
  /** The damping fraction of mean(diag G) by default. */
  public static final double DAMPING_DEFAULT = 0.01;
  /** The largest fraction tried before the statistics are called degenerate. */
  public static final double MAX_DAMPING = 1.0;

  private LeastSquares() {}

  /** Z [n x m] row-major, the damping fraction that made the Cholesky succeed, and λ itself. */
  public record Solution(double[] values, double damping, double lambda) {}

  /**
   * (G + λI)^-1 R with λ = damping × mean(diag G); a zero solution when G is zero (no signal).
   *
   * @param what names the layer in errors
   */
  public static Solution ridge(String what, double[] gram, int n, double[] rhs, int m, double damping, LinearAlgebra linalg) {
    ValidationException.check(gram.length == (long) n * n, "Invalid Gram matrix of %s: %d values for %d x %d", what, gram.length, n, n);
    ValidationException.check(rhs.length == (long) n * m, "Invalid right-hand side of %s: %d values for %d x %d", what, rhs.length, n, m);
    ValidationException.check(damping > 0 && damping <= MAX_DAMPING, "Invalid damping %s: give a fraction in (0, %s] of mean(diag G)", damping, MAX_DAMPING);
    double diagonal = 0;
    for (int j = 0; j < n; j++) {
      diagonal += gram[j * n + j];
    }
    for (double value : gram) {
      ValidationException.check(Double.isFinite(value), "Cannot refit %s: the calibration Gram matrix holds %s", what, value);
    }
    for (double value : rhs) {
      ValidationException.check(Double.isFinite(value), "Cannot refit %s: the calibration cross term holds %s", what, value);
    }
    double meanDiagonal = n == 0 ? 0 : diagonal / n;
    if (meanDiagonal == 0) {
      return new Solution(new double[n * m], damping, 0);
    }
    for (double fraction = damping; ; fraction *= 10) {
      ValidationException.check(
          fraction <= MAX_DAMPING * (1 + 1e-9),
          "Cannot refit %s: X^T X + damping is not positive definite even with damping %s x mean(diag); the calibration statistics are degenerate",
          what, fraction / 10);
      double lambda = fraction * meanDiagonal;
      double[] a = gram.clone();
      for (int j = 0; j < n; j++) {
        a[j * n + j] += lambda;
      }
      double[] z = rhs.clone();
      if (linalg.choleskySolve(a, n, z, m)) {
        return new Solution(z, fraction, lambda);
      }
    }
  }
}
