package dev.sparkprune.jobs.calibration;

import dev.sparkprune.jobs.plan.BlockPlan;
import dev.sparkprune.jobs.plan.ExpertGroup;
import dev.sparkprune.jobs.plan.ExpertPlan;
import java.io.Serializable;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Which MoE blocks the calibration pass runs expert-parallel, and their expert groups: the blocks
 * an {@link ExpertPlan} shards (more than one group under the --expert-task-mb budget). Every
 * other block runs whole in each calibration task, as a dense block does.
 */
public final class ExpertSharding implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final ExpertSharding NONE = new ExpertSharding(Map.of());

  private final Map<Integer, List<ExpertGroup>> groups;

  private ExpertSharding(Map<Integer, List<ExpertGroup>> groups) {
    this.groups = Map.copyOf(groups);
  }

  /** No block sharded. */
  public static ExpertSharding none() {
    return NONE;
  }

  /** The blocks the plan shards, with its groups. */
  public static ExpertSharding of(ExpertPlan plan) {
    Map<Integer, List<ExpertGroup>> groups = new TreeMap<>();
    for (BlockPlan block : plan.blocks()) {
      if (block.sharded()) {
        groups.put(block.block(), block.groups());
      }
    }
    return new ExpertSharding(groups);
  }

  public boolean sharded(int block) {
    return groups.containsKey(block);
  }

  /** The expert groups of a sharded block. */
  public List<ExpertGroup> groups(int block) {
    List<ExpertGroup> blockGroups = groups.get(block);
    if (blockGroups == null) {
      throw new IllegalArgumentException("Block " + block + " is not sharded");
    }
    return blockGroups;
  }

  /** The sharded blocks, ascending. */
  public java.util.Set<Integer> blocks() {
    return new java.util.TreeSet<>(groups.keySet());
  }
}
