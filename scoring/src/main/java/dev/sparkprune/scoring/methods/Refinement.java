package dev.sparkprune.scoring.methods;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * What happens after a method chose its mask, from the same statistics: DSnoT refines a Wanda or
 * RIA mask ({@link Dsnot#step}), then ADMM re-fits the kept weights to the dense layer's outputs
 * ({@link Admm#step}); or ADMM chooses the mask itself, gradually, as a method of its own
 * ({@link Admm#gradualPruner}). {@link #pruner} composes them.
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

  /**
   * The job's pruning for one method, composed explicitly: the method, then DSnoT (Wanda or RIA
   * masks, layers outside {@code dsnotSkip}), then the ADMM update on the mask; or gradual ADMM
   * in the method's place.
   */
  public Pruner pruner(PruningMethod method, Wanda.Group group) {
    if (update == Update.ADMM_GRADUAL) {
      return Admm.gradualPruner(admm, group);
    }
    Pruner pruner = method.pruner(group);
    if (dsnot && (method == PruningMethod.WANDA || method == PruningMethod.RIA)) {
      pruner = pruner.then(dsnotStep());
    }
    if (update == Update.ADMM) {
      // The dense weights are the target: ||X W^T - X W_hat^T|| with W_hat on the mask.
      pruner = pruner.then(Admm.step(admm));
    }
    return pruner;
  }

  /** DSnoT, except on the linears {@code dsnotSkip} matches. */
  private PostStep dsnotStep() {
    PostStep step = Dsnot.step(dsnotSettings);
    if (dsnotSkip.isEmpty()) {
      return step;
    }
    String skip = dsnotSkip;
    return (inputs, previous, target, backend, threads) ->
        inputs.layer().matches(skip) ? previous : step.apply(inputs, previous, target, backend, threads);
  }
}
