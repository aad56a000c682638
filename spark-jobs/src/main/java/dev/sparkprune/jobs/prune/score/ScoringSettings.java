package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import java.io.Serializable;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/**
 * What the scoring tasks read of a run's settings: Wanda's comparison group, the update and
 * refinement after each mask, the routed tokens below which an expert is pruned by magnitude,
 * and the float-weight bytes a scoring task aims at.
 */
public record ScoringSettings(Wanda.Group wandaGroup, Refinement refinement, int minExpertTokens, long taskBytes) implements Serializable {
  public ScoringSettings {
    Objects.requireNonNull(wandaGroup, "wandaGroup is null");
    Objects.requireNonNull(refinement, "refinement is null");
  }

  /** Whether scoring {@code plan} needs calibration statistics: a method that scores activations, or ADMM or DSnoT. */
  public boolean needsCalibration(List<PlannedLinear> plan) {
    return refinement.needsCalibration() || plan.stream().anyMatch(planned -> planned.method.needsCalibration());
  }

  /** Whether some planned linear's method scores with the dense model's gradient statistic (GBLM, Pruner-Zero). */
  public boolean needsGradients(List<PlannedLinear> plan) {
    return plan.stream().anyMatch(planned -> planned.method.needsGradient());
  }

  /** X^T X is kept when any planned linear's method needs it (SparseGPT), or the ADMM update does. */
  public CalibrationStatistics.HessianStorage hessianStorage(List<PlannedLinear> plan) {
    if (refinement.needsHessian()) {
      return CalibrationStatistics.HessianStorage.DOUBLE;
    }
    for (PlannedLinear planned : plan) {
      if (planned.method.hessianStorage() != CalibrationStatistics.HessianStorage.NONE) {
        return planned.method.hessianStorage();
      }
    }
    return CalibrationStatistics.HessianStorage.NONE;
  }

  /**
   * What of {@code plan} needs X^T X, in the words a message about saved statistics gives it:
   * the ADMM update, else the first method that keeps one; empty when nothing does.
   */
  public Optional<String> hessianUser(List<PlannedLinear> plan) {
    if (refinement.needsHessian()) {
      return Optional.of("the ADMM weight update (--update " + refinement.update().name().toLowerCase(Locale.ROOT).replace('_', '-') + ")");
    }
    return plan.stream().filter(planned -> planned.method.hessianStorage() != CalibrationStatistics.HessianStorage.NONE)
        .findFirst().map(planned -> planned.method.displayName());
  }
}
