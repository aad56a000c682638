package dev.sparkprune.jobs.prune.output;

import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.StoredTensor;
import java.io.Serializable;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;

/**
 * Which stored components of the output archive come from staged files ({@link StagedTensors})
 * rather than from the source: every component of a pruned tensor, codes and scales alike (an
 * FP8 weight's {@code weight_scale_inv} may sit in another shard than its codes). Built on the
 * driver from the plan, shipped to the archive writer's tasks.
 */
public final class StagedUnits implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Stored component name to the pruned logical tensor it belongs to. */
  private final HashMap<String, String> components = new HashMap<>();
  private final HashSet<String> tensors = new HashSet<>();

  private StagedUnits() {}

  /** The plan's linears, each a tensor pruned whole. */
  public static StagedUnits of(List<PlannedLinear> plan) {
    StagedUnits units = new StagedUnits();
    for (PlannedLinear planned : plan) {
      ArchiveTensor tensor = planned.tensor();
      units.tensors.add(tensor.name());
      for (StoredTensor component : tensor.components()) {
        units.components.put(component.name(), tensor.name());
      }
    }
    return units;
  }

  /** The pruned logical tensor that stored component {@code component} belongs to. */
  Optional<String> tensorOf(String component) {
    return Optional.ofNullable(components.get(component));
  }

  /** Logical tensors written from staged files. */
  int tensorCount() {
    return tensors.size();
  }
}
