package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.prune.allocation.GlobalAllocation;
import dev.sparkprune.jobs.prune.output.LinearResult;
import dev.sparkprune.jobs.prune.plan.Placement;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.spark.KryoClasses;
import java.util.List;

/** What the prune job's stages shuffle and cache: plan rows, scored linears, global scores. */
public final class PruneKryoClasses implements KryoClasses {
  @Override
  public List<Class<?>> classes() {
    return List.of(LinearResult.class, Placement.class, PlannedLinear.class, GlobalAllocation.LayerScores.class);
  }
}
