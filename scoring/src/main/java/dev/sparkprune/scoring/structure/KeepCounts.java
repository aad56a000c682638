package dev.sparkprune.scoring.structure;

import dev.sparkprune.tensorio.ValidationException;

/**
 * How many structures a keep fraction leaves, the same count in every block so the shrunk
 * config stays a standard one (one intermediate_size, one head count, one expert count).
 */
public final class KeepCounts {
  /** MLP widths stay a multiple of this (tensor-core and SIMD friendly). */
  public static final int MLP_MULTIPLE = 8;

  private KeepCounts() {}

  /** Checks a keep fraction, {@code what} in the message ("MLP keep fraction"): in (0, 1]. */
  public static double checkFraction(String what, double fraction) {
    if (!(fraction > 0 && fraction <= 1)) {
      throw ValidationException.invalid(what, fraction, "give a fraction in (0, 1] of the structures to keep");
    }
    return fraction;
  }

  /** Intermediate channels kept: fraction × width rounded to the nearest multiple of 8, at least 8, at most the width. */
  public static int mlpChannels(int intermediate, double fraction) {
    checkFraction("MLP keep fraction", fraction);
    if (fraction == 1) {
      return intermediate;
    }
    long rounded = Math.round(fraction * intermediate / MLP_MULTIPLE) * MLP_MULTIPLE;
    return (int) Math.min(intermediate, Math.max(Math.min(MLP_MULTIPLE, intermediate), rounded));
  }

  /** Whole KV groups kept: fraction × groups rounded, at least one. */
  public static int kvGroups(int kvHeads, double fraction) {
    checkFraction("heads keep fraction", fraction);
    return (int) Math.max(1, Math.min(kvHeads, Math.round(fraction * kvHeads)));
  }

  /** Routed experts kept per sparse block: fraction × experts rounded, at least one. */
  public static int experts(int experts, double fraction) {
    checkFraction("experts keep fraction", fraction);
    return (int) Math.max(1, Math.min(experts, Math.round(fraction * experts)));
  }

  /**
   * Routed experts kept per group under group-limited routing (DeepSeek-V3, GLM-4.5): fraction ×
   * experts per group rounded, at least 2 (a group scores by its two best experts); every group
   * keeps as many, so n_group stays valid.
   */
  public static int expertsPerGroup(int experts, int groups, double fraction) {
    checkFraction("experts keep fraction", fraction);
    int perGroup = experts / groups;
    return (int) Math.max(2, Math.min(perGroup, Math.round(fraction * perGroup)));
  }

  /** Blocks dropped for a fraction of the depth: rounded, at least one; the last block always stays. */
  public static int droppedBlocks(int blocks, double fraction) {
    checkFraction("fraction of blocks to drop", fraction);
    long count = Math.max(1, Math.round(fraction * blocks));
    ValidationException.check(
        count < blocks,
        "Cannot drop %d of %d blocks (a fraction of %s): that removes every block; the last block is always kept",
        count, blocks, fraction);
    return (int) count;
  }
}
