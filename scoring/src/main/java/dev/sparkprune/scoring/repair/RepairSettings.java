package dev.sparkprune.scoring.repair;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.Objects;

/**
 * How a shrunk model is repaired (see {@link SequentialRepair}).
 *
 * @param target what a refitted linear's output should match
 * @param depth where the change a dropped run of blocks made is refitted
 * @param scope which kept blocks are refitted
 * @param damping the ridge as a fraction of mean(diag X^T X) ({@link LeastSquares})
 */
public record RepairSettings(Target target, DepthFit depth, Scope scope, double damping) implements Serializable {
  /** What measured best on stories260K and the trained 4.5M Llama (README, "Shrinking"). */
  public static final RepairSettings DEFAULTS = new RepairSettings(Target.NORMALIZED, DepthFit.BOTH, Scope.CHANGED, LeastSquares.DAMPING_DEFAULT);

  /** What a refit's output should match on the calibration tokens. */
  public enum Target {
    /**
     * The dense model's residual stream: the block's output on the repaired model's inputs should
     * equal the dense model's hidden state at the same point, so a refit also absorbs the error
     * of everything cut before it.
     */
    STREAM,
    /**
     * {@link #STREAM} with each token weighted by 1 / rms(target token)²: the error as the next
     * block's RMSNorm sees it (to first order), so tokens of large norm do not dominate the fit.
     */
    NORMALIZED,
    /**
     * The dense layer on the repaired model's inputs (SparseGPT's layer-wise target): a down_proj
     * refit matches the dense MLP on the same MLP input. Width only: refits next to a dropped
     * run use {@link #STREAM}, and o_proj refits always do (the removed heads' outputs are not
     * computed by the shrunk model).
     */
    LOCAL
  }

  /** Where the change of a dropped run of blocks l..l+n-1 is refitted. */
  public enum DepthFit {
    /** Block l-1's down_proj, all columns refitted to reach the dense stream at block l+n. */
    PRECEDING_COLUMNS,
    /** ReplaceMe: a map T [hidden x hidden] on block l-1's MLP output, folded into its down_proj. */
    PRECEDING_MAP,
    /** Block l+n's down_proj instead: it refits to reach the dense stream after block l+n. */
    NEXT,
    /** {@link #PRECEDING_COLUMNS}, then block l+n's down_proj refits too, for what is left. */
    BOTH
  }

  /** Which kept blocks are refitted. */
  public enum Scope {
    /** Blocks whose width changed and the block that takes a dropped run's change. */
    CHANGED,
    /** Every kept block, o_proj and down_proj (error correction everywhere). */
    ALL
  }

  public RepairSettings {
    Objects.requireNonNull(target, "target is null");
    Objects.requireNonNull(depth, "depth is null");
    Objects.requireNonNull(scope, "scope is null");
    ValidationException.check(
        damping > 0 && damping <= LeastSquares.MAX_DAMPING, "Invalid repair damping %s: give a fraction in (0, %s] of mean(diag X^T X)", damping,
        LeastSquares.MAX_DAMPING);
  }
}
