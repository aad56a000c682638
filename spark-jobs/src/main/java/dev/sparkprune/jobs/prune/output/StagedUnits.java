package dev.sparkprune.jobs.prune.output;

import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.tensorio.arch.FusedExpertSlice;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.StoredTensor;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;

/**
 * Which stored components of the output archive come from staged files ({@link StagedTensors})
 * rather than from the source: every component of a pruned tensor, codes and scales alike (an
 * FP8 weight's {@code weight_scale_inv} may sit in another shard than its codes), and the pruned
 * slices of a fused expert tensor (gpt-oss), written into their expert's rows. Built on the
 * driver from the plan, shipped to the archive writer's tasks.
 */
public final class StagedUnits implements Serializable {
  private static final long serialVersionUID = 1L;

  /** How a stored component of a fused expert tensor takes a staged slice. */
  enum SliceComponent {
    /** BF16 values [experts, in, width]: the slice's [out, in] values go to its columns. */
    VALUES,
    /** MXFP4 codes [experts, width, in / 32, 16]: the slice's rows go to its rows. */
    BLOCKS,
    /** MXFP4 scales [experts, width, in / 32]: likewise. */
    SCALES
  }

  /** Stored component name to the pruned logical tensor it belongs to. */
  private final HashMap<String, String> components = new HashMap<>();
  private final HashSet<String> tensors = new HashSet<>();
  /** Stored component of a fused expert tensor to how it takes its slices. */
  private final HashMap<String, SliceComponent> fusedComponents = new HashMap<>();
  /** Fused tensor name to its pruned slices, in plan order. */
  private final HashMap<String, List<Linear>> slices = new HashMap<>();

  private StagedUnits() {}

  /** The plan's linears: each a tensor pruned whole, or a slice of a fused expert tensor. */
  public static StagedUnits of(List<PlannedLinear> plan) {
    StagedUnits units = new StagedUnits();
    for (PlannedLinear planned : plan) {
      ArchiveTensor tensor = planned.tensor();
      units.tensors.add(tensor.name());
      if (planned.linear.fusedSlice().isPresent()) {
        units.slices.computeIfAbsent(tensor.name(), name -> new ArrayList<>()).add(planned.linear);
        for (StoredTensor component : tensor.components()) {
          boolean scales = tensor.scales().map(s -> s.name().equals(component.name())).orElse(false);
          units.fusedComponents.put(
              component.name(), !tensor.isQuantized() ? SliceComponent.VALUES : scales ? SliceComponent.SCALES : SliceComponent.BLOCKS);
          units.components.put(component.name(), tensor.name());
        }
        continue;
      }
      for (StoredTensor component : tensor.components()) {
        units.components.put(component.name(), tensor.name());
      }
    }
    return units;
  }

  /** The pruned logical tensor that stored component {@code component} belongs to, when staged whole. */
  Optional<String> tensorOf(String component) {
    return fusedComponents.containsKey(component) ? Optional.empty() : Optional.ofNullable(components.get(component));
  }

  /** How stored component {@code component} of a fused expert tensor takes its staged slices; empty for any other. */
  Optional<SliceComponent> fusedComponent(String component) {
    return Optional.ofNullable(fusedComponents.get(component));
  }

  /** The staged slices of expert {@code expert} of the fused tensor holding stored component {@code component}. */
  List<Linear> slicesOf(String component, int expert) {
    List<Linear> staged = new ArrayList<>();
    for (Linear linear : slices.getOrDefault(components.get(component), List.of())) {
      FusedExpertSlice slice = linear.fusedSlice().orElseThrow();
      if (slice.expert() == expert) {
        staged.add(linear);
      }
    }
    return staged;
  }

  /** Logical tensors written from staged files. */
  int tensorCount() {
    return tensors.size();
  }
}
