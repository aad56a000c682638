package dev.sparkprune.jobs.prune.allocation;

import dev.sparkprune.jobs.prune.PruneJob;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.PruneRun;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.prune.output.LinearResult;
import java.io.IOException;
import java.util.List;

/**
 * How the target sparsity is shared among the planned linears, and so how they get pruned:
 * uniform (every linear at the target), OWL (per-block targets from outlier ratios), global
 * and LAMP (one threshold over all scores). A new allocation adds an implementation here,
 * never a branch in {@link PruneJob#run}.
 */
public interface Allocation {
  /** Prunes the plan's linears (masks written, pruned tensors staged); the driver's summaries. */
  List<LinearResult> prune(PruneRun run, List<PlannedLinear> plan) throws IOException;

  static Allocation of(PruneOptions.Allocation allocation) {
    return switch (allocation) {
      case UNIFORM -> new UniformAllocation();
      case OWL -> new OwlAllocation();
      case GLOBAL -> new GlobalAllocation(false);
      case LAMP -> new GlobalAllocation(true);
    };
  }
}
