package dev.sparkprune.scoring;

import dev.sparkprune.tensorio.mask.Mask;
import java.util.Objects;
import java.util.OptionalDouble;

/**
 * A pruned linear: the mask (1 = kept), the weights after pruning (pruned entries exactly zero;
 * SparseGPT's kept entries updated), and SparseGPT's reconstruction loss and damping.
 */
public final class PruneResult {
  private final Mask mask;
  private final float[] weights;
  private final double reconstructionLoss;
  private final double damping;

  private PruneResult(Mask mask, float[] weights, double reconstructionLoss, double damping) {
    this.mask = Objects.requireNonNull(mask, "mask is null");
    this.weights = Objects.requireNonNull(weights, "weights is null");
    this.reconstructionLoss = reconstructionLoss;
    this.damping = damping;
  }

  /** A result whose kept weights are the input's (magnitude, Wanda). */
  public static PruneResult masked(Mask mask, float[] weights) {
    return new PruneResult(mask, weights, Double.NaN, Double.NaN);
  }

  /** A result whose kept weights were updated by a solver with no SparseGPT loss or damping (ADMM). */
  public static PruneResult updated(Mask mask, float[] weights) {
    return new PruneResult(mask, weights, Double.NaN, Double.NaN);
  }

  /** A result with updated weights and the loss sum_rows sum_cols (w - q)^2 / Hinv_jj^2 / 2. */
  public static PruneResult reconstructed(Mask mask, float[] weights, double reconstructionLoss, double damping) {
    return new PruneResult(mask, weights, reconstructionLoss, damping);
  }

  public Mask mask() {
    return mask;
  }

  /** Row-major [rows x cols] weights after pruning. */
  public float[] weights() {
    return weights;
  }

  public OptionalDouble reconstructionLoss() {
    return Double.isNaN(reconstructionLoss) ? OptionalDouble.empty() : OptionalDouble.of(reconstructionLoss);
  }

  /** The damping added to diag(H) that made the Cholesky succeed, as a fraction of mean(diag H). */
  public OptionalDouble damping() {
    return Double.isNaN(damping) ? OptionalDouble.empty() : OptionalDouble.of(damping);
  }
}
