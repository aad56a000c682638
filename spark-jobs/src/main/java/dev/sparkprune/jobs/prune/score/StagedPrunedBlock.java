package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.jobs.prune.output.StagedTensors;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.calibration.BlockEdit;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.tensorio.arch.FusedExpertSlice;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.util.List;
import java.util.Objects;
import java.util.Map;
import java.util.TreeMap;

/**
 * A block as the sequential prune job left it: its linears scored in this run replaced by
 * their staged pruned weights, so the next block calibrates on the pruned model's activations.
 */
final class StagedPrunedBlock implements BlockEdit {
  private static final long serialVersionUID = 1L;

  private final List<Linear> linears;
  /** The pruned linears' tensors by name, sorted: how each is stored tells how to read it back. */
  private final TreeMap<String, ArchiveTensor> prunedTensors;

  private StagedPrunedBlock(List<Linear> linears, Map<String, ArchiveTensor> prunedTensors) {
    this.linears = List.copyOf(linears);
    this.prunedTensors = new TreeMap<>(prunedTensors);
  }

  /** Block {@code block} of the layout with the planned linears of that block pruned. */
  static StagedPrunedBlock of(ModelLayout layout, int block, List<PlannedLinear> blockPlan) {
    Map<String, ArchiveTensor> pruned = new TreeMap<>();
    blockPlan.forEach(planned -> pruned.put(planned.tensorName(), planned.tensor()));
    return new StagedPrunedBlock(layout.blocks().get(block).linears(), pruned);
  }

  /**
   * The block's pruned linears swapped in; {@code dense} may hold part of the block (an
   * expert-parallel block's attention, or one expert), and only the linears it holds are read.
   */
  @Override
  public BlockWeights apply(JobContext context, BlockWeights dense) throws IOException {
    Objects.requireNonNull(dense, "dense is null");
    BlockWeights weights = dense;
    HadoopFileIO io = context.io();
    // Fused expert tensors (gpt-oss): each copied once, its pruned slices written into the copy.
    Map<String, float[]> patched = new TreeMap<>();
    for (Linear linear : linears) {
      ArchiveTensor tensor = prunedTensors.get(linear.tensorName());
      if (tensor != null && linear.fusedSlice().isPresent()) {
        FusedExpertSlice slice = linear.fusedSlice().get();
        // The whole block's fused tensor, or weights holding this expert alone (expert-parallel).
        String name = dense.contains(slice.tensor()) ? slice.tensor() : FusedExpertSlice.expertSliceName(slice.tensor(), slice.expert());
        if (dense.contains(name)) {
          float[] values = patched.computeIfAbsent(name, key -> dense.tensor(key).clone());
          int offset = name.equals(slice.tensor()) ? slice.expert() * (int) linear.inFeatures() * slice.width() : 0;
          slice.scatter(StagedTensors.readOutByIn(io, context.staging(), tensor, linear), values, offset);
        }
        continue;
      }
      // A sharded block's dense weights hold no routed experts: those are read by the expert tasks.
      if (tensor != null && dense.contains(linear.tensorName())) {
        weights = weights.withTensor(linear.tensorName(), StagedTensors.readOutByIn(io, context.staging(), tensor, linear));
      }
    }
    for (Map.Entry<String, float[]> entry : patched.entrySet()) {
      weights = weights.withTensor(entry.getKey(), entry.getValue());
    }
    return weights;
  }

  @Override
  public String cacheKey() {
    // Sorted names: one block's pruned set in a run is unique, and the same on every executor.
    return "pruned:" + String.join(",", prunedTensors.keySet());
  }
}
