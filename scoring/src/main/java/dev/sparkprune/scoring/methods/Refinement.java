package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * What happens after a method chose its mask, from the same statistics: DSnoT refines a Wanda or
 * RIA mask ({@link Dsnot}), then ADMM re-fits the kept weights to the dense layer's outputs
 * ({@link Admm}); or ADMM chooses the mask itself, gradually, instead of the method.
 *
 * @param dsnotSkip tensor names DSnoT leaves alone (the reference skips MLP linears by default);
 *     empty for none
 */
public record Refinement(Update update, Admm.Settings admm, boolean dsnot, Dsnot.Settings dsnotSettings, String dsnotSkip)
    implements Serializable {
  /** The reference's default: DSnoT refines attention linears only ({@code skip_layer = mlp}). */
  public static final String DSNOT_SKIP_DEFAULT = ".*\\.mlp\\..*";

  /** Neither an update nor a refinement: the method's own result. */
  public static final Refinement NONE = new Refinement(Update.NONE, Admm.DEFAULTS, false, Dsnot.DEFAULTS, DSNOT_SKIP_DEFAULT);

  /** The weight update after the mask. */
  public enum Update {
    NONE,
    /** ADMM on the method's (or DSnoT's) mask. */
    ADMM,
    /** ADMM choosing the mask during its first iterations; the method only names the statistics. */
    ADMM_GRADUAL;

    public static Update parse(String text) {
      switch (text.toLowerCase(Locale.ROOT)) {
        case "none":
          return NONE;
        case "admm":
          return ADMM;
        case "admm-gradual":
          return ADMM_GRADUAL;
        default:
          throw ValidationException.invalid("weight update", text, "use admm, admm-gradual or none");
      }
    }
  }

  public Refinement {
    Objects.requireNonNull(update, "update is null");
    Objects.requireNonNull(admm, "admm is null");
    Objects.requireNonNull(dsnotSettings, "dsnotSettings is null");
    Objects.requireNonNull(dsnotSkip, "dsnotSkip is null");
    try {
      Pattern.compile(dsnotSkip);
    } catch (PatternSyntaxException e) {
      throw ValidationException.invalid("DSnoT skip pattern", dsnotSkip, "not a regular expression (%s)", e.getDescription());
    }
  }

  /** ADMM needs X^T X whatever method chose the mask. */
  public boolean needsHessian() {
    return update != Update.NONE;
  }

  public boolean needsCalibration() {
    return update != Update.NONE || dsnot;
  }

  /** Checks the combination with the job's method: DSnoT refines Wanda or RIA masks, gradual ADMM uses Wanda's metric. */
  public void checkMethod(PruningMethod method) {
    ValidationException.check(
        !dsnot || method == PruningMethod.WANDA || method == PruningMethod.RIA,
        "DSnoT refines a Wanda or RIA mask: use it with the wanda or ria method, not %s",
        method.displayName());
    ValidationException.check(
        update != Update.ADMM_GRADUAL || method == PruningMethod.WANDA && !dsnot,
        "Gradual ADMM chooses its own mask from Wanda's metric: use it with the wanda method and without DSnoT");
  }

  /** The method's result, refined and updated as configured. */
  public PruneResult prune(
      PruningMethod method, String layer, Weights weights, CalibrationStatistics statistics, SparsityTarget target,
      ComputeBackend backend, int threads, Wanda.Group group) {
    if (update == Update.ADMM_GRADUAL) {
      return Admm.gradual(layer, weights, target, group, requireHessian(layer, statistics), admm, backend.linearAlgebra(), threads);
    }
    PruneResult result = method.prune(layer, weights, statistics, target, backend, threads, group);
    if (dsnot && (method == PruningMethod.WANDA || method == PruningMethod.RIA) && !(!dsnotSkip.isEmpty() && layer.matches(dsnotSkip))) {
      result = Dsnot.refine(layer, weights, result.mask(), statistics, target, dsnotSettings, threads);
    }
    if (update == Update.ADMM) {
      // The dense weights are the target: ||X W^T - X W_hat^T|| with W_hat on the mask.
      result = Admm.update(layer, weights, result.mask(), requireHessian(layer, statistics), admm, backend.linearAlgebra(), threads);
    }
    return result;
  }

  private static double[] requireHessian(String layer, CalibrationStatistics statistics) {
    ValidationException.check(statistics != null, "Cannot update layer %s with ADMM: no calibration statistics", layer);
    return statistics.hessian();
  }
}
