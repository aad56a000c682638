package dev.sparkprune.jobs.prune.allocation;

import dev.sparkprune.jobs.prune.output.LinearResult;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.prune.score.CalibratedScoring;
import java.io.IOException;
import java.util.List;

/** Every linear at its planned target (--sparsity or --pattern, or a --config rule's). */
final class UniformAllocation implements Allocation {
  @Override
  public List<LinearResult> prune(CalibratedScoring scoring, List<PlannedLinear> plan) throws IOException {
    return scoring.prune(plan);
  }
}
