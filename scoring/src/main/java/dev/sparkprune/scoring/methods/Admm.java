package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.Selection;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.Serializable;

/**
 * ADMM weight update (Boža, "Fast and Optimal Weight Update for Pruned Large Language Models",
 * arXiv 2401.02938): given a mask and the layer's X^T X, minimise ||X W^T - X W_hat^T||^2 over
 * W_hat with the mask's zeros by the alternating direction method of multipliers.
 *
 * <p>As the reference ({@code fmfi-compbio/admm-pruning}, {@code lib/admm.py}) it works in the
 * normalised space: norm_j = sqrt(XX_jj) + 1e-8, XX' = XX / (norm norm^T), W' = W diag(norm);
 * damping rho0 = percdamp * mean(diag XX') is added to XX' (so the objective is the damped
 * (W_hat' - W')(XX' + rho0 I)(W_hat' - W')^T); then one inverse of XX' + (rho0 + rho) I and,
 * per iteration, Z = (W + U) * mask, U += W - Z, W = (Y + rho (Z - U)) (XX' + (rho0 + rho) I)^-1
 * with Y = W' (XX' + rho0 I); the result is Z = (W + U) * mask, scaled back by 1 / norm.
 *
 * <p>Gradual variant (the paper's "gradual pruning"): during the first {@code gradualSteps}
 * iterations the mask is chosen again from |W + U| (Wanda's metric, since the space is
 * normalised) at a cubic schedule s_t = s - s (1 - (t + 1) / gradualSteps)^3, per output row
 * (or per matrix), and for N:M the M - N largest of every group are always kept and the rest cut
 * to s_t per row, so the last step is exactly N:M. (The reference's global unstructured branch
 * applies the full s from the first step; its per-output branch and the paper use the schedule.)
 *
 * <p>The inverse is factored in double, the iterations run in float GEMMs as the reference's
 * float32 tensors do.
 */
public final class Admm {
  /** The reference's defaults: 20 iterations, percdamp 0.1, rho 1, 15 gradual steps. */
  public static final Settings DEFAULTS = new Settings(20, 0.1, 1.0, 15);

  /** Knobs of the update, with the reference's names. */
  public record Settings(int iterations, double percdamp, double rho, int gradualSteps) implements Serializable {
    public Settings {
      ValidationException.check(iterations > 0, "Invalid ADMM iterations %d: must be positive", iterations);
      ValidationException.check(percdamp >= 0 && Double.isFinite(percdamp), "Invalid ADMM percdamp %s: must be >= 0", percdamp);
      ValidationException.check(rho > 0 && Double.isFinite(rho), "Invalid ADMM rho %s: must be positive", rho);
      ValidationException.check(
          gradualSteps > 0 && gradualSteps <= iterations,
          "Invalid ADMM gradual steps %d: must be in [1, iterations = %d]",
          gradualSteps,
          iterations);
    }
  }

  private Admm() {}

  /**
   * The update as a step after a method: re-fits the dense weights on the previous step's mask,
   * with H from the statistics.
   */
  public static PostStep step(Settings settings) {
    return (inputs, previous, target, backend, threads) -> update(
        inputs.layer(), inputs.weights(), previous.mask(), inputs.requireStatistics("update", "ADMM").hessian(), settings, backend,
        threads);
  }

  /** Gradual ADMM as a method of its own: it chooses the mask from Wanda's metric within {@code group} while it updates. */
  public static Pruner gradualPruner(Settings settings, Wanda.Group group) {
    return (inputs, target, backend, threads) -> gradual(
        inputs.layer(), inputs.weights(), target, group, inputs.requireStatistics("update", "ADMM").hessian(), settings, backend,
        threads);
  }

  /**
   * Updates the kept weights of {@code weights} under the fixed {@code mask}.
   *
   * @param xtx X^T X or any positive multiple of it (H = 2 / n X^T X), row-major [cols x cols]
   */
  public static PruneResult update(
      String layer, Weights weights, Mask mask, double[] xtx, Settings settings, ComputeBackend backend, int threads) {
    ValidationException.check(
        mask.rows() == weights.rows() && mask.cols() == weights.cols(),
        "Cannot update layer %s with ADMM: the mask is [%d, %d] but the weight is [%d, %d]",
        layer, mask.rows(), mask.cols(), weights.rows(), weights.cols());
    return run(layer, weights, mask, null, Wanda.Group.ROW, xtx, settings, backend, threads);
  }

  /** Chooses the mask gradually during the iterations (see the class comment) and updates the weights. */
  public static PruneResult gradual(
      String layer, Weights weights, SparsityTarget target, Wanda.Group group, double[] xtx, Settings settings,
      ComputeBackend backend, int threads) {
    target.checkFits(layer, weights.cols());
    return run(layer, weights, null, target, group, xtx, settings, backend, threads);
  }

  private static PruneResult run(
      String layer, Weights weights, Mask fixed, SparsityTarget target, Wanda.Group group, double[] xtx, Settings settings,
      ComputeBackend backend, int threads) {
    LinearAlgebra linalg = backend.linearAlgebra();
    weights.checkFinite(layer, threads);
    int rows = weights.rows();
    int n = weights.cols();
    ValidationException.check(
        xtx.length == (long) n * n,
        "Cannot update layer %s with ADMM: X^T X has %d entries, expected %d x %d", layer, xtx.length, n, n);
    double[] norm = new double[n];
    for (int j = 0; j < n; j++) {
      double xjj = xtx[j * n + j];
      ValidationException.check(
          Double.isFinite(xjj) && xjj >= 0, "Cannot update layer %s with ADMM: X^T X diagonal %d is %s", layer, j, xjj);
      norm[j] = Math.sqrt(xjj) + 1e-8;
    }
    // XX' = XX / (norm norm^T), damped by rho0 = percdamp * mean(diag XX').
    double[] a = new double[n * n];
    double diagonal = 0;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        double value = xtx[i * n + j] / (norm[i] * norm[j]);
        ValidationException.check(Double.isFinite(value), "Cannot update layer %s with ADMM: X^T X holds %s", layer, xtx[i * n + j]);
        a[i * n + j] = value;
      }
      diagonal += a[i * n + i];
    }
    double rho0 = settings.percdamp() * diagonal / n;
    float[] damped = new float[n * n];
    for (int i = 0; i < n; i++) {
      a[i * n + i] += rho0;
      for (int j = 0; j < n; j++) {
        damped[i * n + j] = (float) a[i * n + j];
      }
    }
    float[] w = new float[rows * n];
    float[] source = weights.values();
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < n; j++) {
        w[r * n + j] = (float) (source[r * n + j] * norm[j]);
      }
    }
    // Y = W' (XX' + rho0 I): the right-hand side of every W step.
    float[] y = new float[rows * n];
    linalg.gemm(rows, n, n, 1f, w, 0, n, damped, 0, n, 0f, y, 0, n);
    float[] inverse = inverse(layer, a, n, settings.rho(), linalg);

    float rho = (float) settings.rho();
    float[] u = new float[rows * n];
    float[] rhs = new float[rows * n];
    int rowBytes = Mask.rowBytes(n);
    byte[] keep = fixed != null ? fixed.bits() : new byte[rows * rowBytes];
    for (int iteration = 0; iteration < settings.iterations(); iteration++) {
      if (fixed == null && iteration < settings.gradualSteps()) {
        double fraction = 1 - (iteration + 1) / (double) settings.gradualSteps();
        double current = target.ratio() - target.ratio() * fraction * fraction * fraction;
        chooseMask(w, u, rows, n, target, current, group, keep, backend, threads);
      }
      final byte[] mask = keep;
      RowParallel.forEach(rows, threads, (start, end) -> {
        for (int r = start; r < end; r++) {
          for (int j = 0, o = r * n; j < n; j++, o++) {
            float zValue = Selection.isKept(mask, r * rowBytes, j) ? w[o] + u[o] : 0f;
            u[o] += w[o] - zValue;
            rhs[o] = y[o] + rho * (zValue - u[o]);
          }
        }
      });
      linalg.gemm(rows, n, n, 1f, rhs, 0, n, inverse, 0, n, 0f, w, 0, n);
    }
    float[] out = new float[rows * n];
    for (int r = 0; r < rows; r++) {
      for (int j = 0, o = r * n; j < n; j++, o++) {
        out[o] = Selection.isKept(keep, r * rowBytes, j) ? (float) ((w[o] + u[o]) / norm[j]) : 0f;
      }
    }
    return PruneResult.updated(Mask.fromBits(rows, n, keep), out);
  }

  /** (A + rho I)^-1 in float, A symmetric positive definite: U^T U from the double Cholesky factor of the inverse. */
  private static float[] inverse(String layer, double[] a, int n, double rho, LinearAlgebra linalg) {
    double[] work = a.clone();
    for (int j = 0; j < n; j++) {
      work[j * n + j] += rho;
    }
    ValidationException.check(
        linalg.upperCholeskyOfInverse(work, n),
        "Cannot update layer %s with ADMM: X^T X + damping is not positive definite; the calibration statistics are degenerate",
        layer);
    float[] upper = new float[n * n];
    float[] upperTransposed = new float[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = i; j < n; j++) {
        upper[i * n + j] = (float) work[i * n + j];
        upperTransposed[j * n + i] = (float) work[i * n + j];
      }
    }
    float[] inverse = new float[n * n];
    linalg.gemm(n, n, n, 1f, upperTransposed, 0, n, upper, 0, n, 0f, inverse, 0, n);
    return inverse;
  }

  /** The gradual mask at sparsity {@code current}: the lowest |W + U| per row (or matrix); N:M keeps each group's M - N largest. */
  private static void chooseMask(
      float[] w, float[] u, int rows, int n, SparsityTarget target, double current, Wanda.Group group, byte[] keep,
      ComputeBackend backend, int threads) {
    int rowBytes = Mask.rowBytes(n);
    if (!target.isStructured() && group == Wanda.Group.MATRIX) {
      float[] scores = new float[rows * n];
      for (int i = 0; i < scores.length; i++) {
        scores[i] = Math.abs(w[i] + u[i]) + 0f;
      }
      long k = (long) (scores.length * current);
      float threshold = k > 0 ? backend.kthSmallest(scores, 0, scores.length, k - 1) : Float.NEGATIVE_INFINITY;
      byte[] rowBits = new byte[rowBytes];
      for (int r = 0; r < rows; r++) {
        Selection.keepAtLeast(scores, r * n, n, threshold, true, rowBits);
        System.arraycopy(rowBits, 0, keep, r * rowBytes, rowBytes);
      }
      return;
    }
    ComputeBackend.RowScorer magnitude = (r, scores) -> {
      for (int j = 0; j < n; j++) {
        scores[j] = Math.abs(w[r * n + j] + u[r * n + j]) + 0f;
      }
    };
    ComputeBackend.RowScorer scorer = magnitude;
    if (target.isStructured()) {
      // The M - N largest of each group are never cut: score +inf; the rest compete per row.
      byte[] groupKept = new byte[rows * rowBytes];
      backend.pruneLowestPerGroup(rows, n, magnitude, target.prunedPerGroup(), target.groupSize(),
          (r, bits) -> System.arraycopy(bits, 0, groupKept, r * rowBytes, rowBytes), threads);
      scorer = (r, scores) -> {
        magnitude.score(r, scores);
        for (int j = 0; j < n; j++) {
          scores[j] = Selection.isKept(groupKept, r * rowBytes, j) ? Float.POSITIVE_INFINITY : scores[j];
        }
      };
    }
    backend.pruneLowestPerRow(rows, n, scorer, (int) (n * current), (r, bits) -> System.arraycopy(bits, 0, keep, r * rowBytes, rowBytes),
        threads);
  }
}
