package dev.sparkprune.jobs.prune.allocation;

import dev.sparkprune.jobs.prune.output.LinearResult;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.prune.score.CalibratedScoring;
import dev.sparkprune.scoring.SparsityTarget;
import java.io.IOException;
import java.util.List;

/**
 * How the target sparsity is shared among the planned linears, and so how they get pruned:
 * uniform (every linear at the target), OWL (per-block targets from outlier ratios), global
 * and LAMP (one threshold over all scores). Each drives the run's scoring unit; a new
 * allocation adds an implementation here, never a branch in the prune job's {@code run()}.
 */
public interface Allocation {
  /** Prunes the plan's linears (masks written, pruned tensors staged); the driver's summaries. */
  List<LinearResult> prune(CalibratedScoring scoring, List<PlannedLinear> plan) throws IOException;

  /** Every linear at its planned target (--sparsity or --pattern, or a --config rule's). */
  static Allocation uniform() {
    return new UniformAllocation();
  }

  /** OWL's per-block targets around {@code target}, spread over [0, 2 lambda], outliers above m x the block mean. */
  static Allocation owl(SparsityTarget target, double lambda, double m) {
    return new OwlAllocation(target, lambda, m);
  }

  /**
   * One threshold over every linear's scores: magnitude, LAMP's when {@code lamp}, or Wanda's
   * (from a dense calibration pass) when {@code wandaScores}; each layer keeps at least
   * {@code minKeep}.
   */
  static Allocation global(boolean lamp, boolean wandaScores, SparsityTarget target, double minKeep) {
    return new GlobalAllocation(lamp, wandaScores, target, minKeep);
  }
}
