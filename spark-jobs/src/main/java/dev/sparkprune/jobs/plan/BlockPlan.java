package dev.sparkprune.jobs.plan;

import java.util.List;

/**
 * One block's calibration stages and their estimated bytes ({@link ExpertPlan} has the formulas).
 * A block is sharded when its routed experts make more than one group: then the block task holds
 * attention, router and shared expert only (stage 1, and stage 3 which combines), and each expert
 * group is a task of its own (stage 2) fed by a shuffle of the routed tokens' states. Otherwise
 * one task per calibration partition runs the whole block, as for dense models.
 *
 * @param groups the block's expert groups (empty for a dense block, one for an unsharded sparse block)
 * @param blockTaskBytes the whole block in one task (unsharded), per calibration partition
 * @param attentionTaskBytes stage 1 per calibration partition: attention, router and shared expert, the partition's states
 * @param expertTaskBytes stage 2, the largest group's task: its experts, their statistics, its routed tokens' states
 * @param combineTaskBytes stage 3 per calibration partition: the shared expert, the states and the returned expert outputs
 * @param dispatchBytes shuffle 1 to 2: the routed tokens' states (every token to every group with --moe-calibration all)
 * @param returnBytes shuffle 2 to 3: the experts' outputs on their routed tokens
 * @param statisticsBytes the experts' folded statistics leaving stage 2
 * @param largestExpertBytes the largest routed expert with its statistics: the least an expert task holds (0 for a dense block)
 */
public record BlockPlan(
    int block, boolean sparse, List<ExpertGroup> groups, long blockTaskBytes, long attentionTaskBytes, long expertTaskBytes,
    long combineTaskBytes, long dispatchBytes, long returnBytes, long statisticsBytes, long largestExpertBytes) {
  public BlockPlan {
    groups = List.copyOf(groups);
  }

  /** Whether the block's experts are spread over expert tasks (more than one group). */
  public boolean sharded() {
    return groups.size() > 1;
  }

  /** The largest task of the block's calibration: the whole block, or the largest of its three stages. */
  public long maxTaskBytes() {
    return sharded() ? Math.max(attentionTaskBytes, Math.max(expertTaskBytes, combineTaskBytes)) : blockTaskBytes;
  }

  /** Bytes shuffled by the sharded stages (0 unsharded). */
  public long shuffleBytes() {
    return sharded() ? dispatchBytes + returnBytes + statisticsBytes : 0;
  }
}
