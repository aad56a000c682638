package dev.sparkprune.tensorio.shrink;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * What a shrunk model keeps of its source: the blocks, in order, and within each its MLP
 * channels, KV groups and routed experts. Every kept block keeps the same number of each, so the
 * shrunk config has one intermediate_size, one head count and one expert count.
 */
public final class ShrinkPlan implements Serializable {
  private static final long serialVersionUID = 1L;

  private final ModelShape source;
  private final List<KeptBlock> blocks;

  private ShrinkPlan(ModelShape source, List<KeptBlock> blocks) {
    this.source = source;
    this.blocks = List.copyOf(blocks);
  }

  /**
   * A plan keeping {@code keptBlocks} (ascending source indices); a block missing from one of
   * the maps keeps all of that structure.
   */
  public static ShrinkPlan of(
      ModelShape source, List<Integer> keptBlocks, Map<Integer, int[]> mlpChannels, Map<Integer, int[]> kvGroups,
      Map<Integer, int[]> experts) {
    ValidationException.check(!keptBlocks.isEmpty(), "Cannot shrink: the plan removes every block; keep at least one");
    List<KeptBlock> blocks = new ArrayList<>();
    int previous = -1;
    for (int block : keptBlocks) {
      ValidationException.check(
          block > previous && block < source.blocks(), "Invalid kept blocks %s: ascending indices below %d", keptBlocks, source.blocks());
      previous = block;
      boolean sparse = source.isSparse(block);
      ValidationException.check(
          !sparse || !mlpChannels.containsKey(block),
          "Cannot shrink the MLP width of block %d: it is a mixture-of-experts block; remove whole experts instead", block);
      int[] channels = sparse
          ? new int[0]
          : checked("MLP channels", block, mlpChannels.getOrDefault(block, range(source.intermediate())), source.intermediate());
      int[] groups = checked("KV groups", block, kvGroups.getOrDefault(block, range(source.kvHeads())), source.kvHeads());
      ValidationException.check(
          source.headsRemovable() || groups.length == source.kvHeads(),
          "Cannot remove attention heads of block %d: %s has multi-head latent attention (one latent key/value projection feeds"
              + " every head); shrink depth, dense MLP width or experts instead",
          block, source.modelType());
      int routed = source.isSparse(block) ? source.experts() : 0;
      int[] kept = routed == 0 ? new int[0] : checked("experts", block, experts.getOrDefault(block, range(routed)), routed);
      ValidationException.check(
          routed > 0 || !experts.containsKey(block), "Cannot keep experts of block %d: it is a dense block", block);
      if (routed > 0) {
        checkGroups(source.moe().orElseThrow(), block, kept);
      }
      blocks.add(new KeptBlock(block, channels, groups, kept));
    }
    checkUniform(blocks);
    ValidationException.check(
        source.keepsLayerPattern(keptBlocks),
        "Cannot keep blocks %s of %s: sliding-window and full attention would no longer alternate from a sliding first layer, which"
            + " gpt-oss runtimes (its reference code, llama.cpp, vLLM) assume whatever layer_types says; drop blocks in adjacent pairs",
        keptBlocks, source.modelType());
    return new ShrinkPlan(source, blocks);
  }

  private static int[] checked(String what, int block, int[] indices, int total) {
    ValidationException.check(indices.length >= 1, "Cannot shrink block %d: it would keep no %s", block, what);
    for (int i = 0; i < indices.length; i++) {
      ValidationException.check(
          indices[i] >= 0 && indices[i] < total && (i == 0 || indices[i] > indices[i - 1]),
          "Invalid kept %s of block %d: ascending indices below %d expected, found %d",
          what, block, total, indices[i]);
    }
    return indices;
  }

  /**
   * Group-limited routing (DeepSeek-V3, GLM-4.5) picks experts within the best of n_group
   * contiguous groups, each scored by its two best experts. Every group keeping the same number,
   * at least 2, keeps n_group valid for the new count and the kept experts of source group g
   * form group g of the shrunk model, so routing among them is the source's restricted to them.
   */
  private static void checkGroups(MixtureOfExperts moe, int block, int[] kept) {
    if (moe.scoring() != MixtureOfExperts.Scoring.SIGMOID_GROUP_LIMITED) {
      return;
    }
    int groups = moe.groups();
    int perGroup = moe.experts() / groups;
    int[] counts = new int[groups];
    for (int expert : kept) {
      counts[expert / perGroup]++;
    }
    for (int g = 0; g < groups; g++) {
      ValidationException.check(
          counts[g] == counts[0],
          "Cannot keep experts %s of block %d: routing chooses within n_group %d groups of %d experts, so every group must keep"
              + " the same number, but group 0 keeps %d and group %d keeps %d; choose the kept experts group by group",
          Arrays.toString(kept), block, groups, perGroup, counts[0], g, counts[g]);
    }
    ValidationException.check(
        counts[0] >= 2,
        "Cannot keep %d experts of block %d: routing scores each of the n_group %d groups by its two best experts, so keep at least"
            + " 2 per group (%d in all)",
        kept.length, block, groups, 2 * groups);
  }

  private static void checkUniform(List<KeptBlock> blocks) {
    KeptBlock first = blocks.get(0);
    KeptBlock firstDense = blocks.stream().filter(b -> b.mlpChannels().length > 0).findFirst().orElse(first);
    KeptBlock firstSparse = blocks.stream().filter(b -> b.experts().length > 0).findFirst().orElse(first);
    for (KeptBlock block : blocks) {
      ValidationException.check(
          (block.mlpChannels().length == 0 || block.mlpChannels().length == firstDense.mlpChannels().length)
              && block.kvGroups().length == first.kvGroups().length,
          "Invalid shrink plan: %s keeps other widths than %s; every block must keep the same counts", block, first);
      ValidationException.check(
          block.experts().length == 0 || block.experts().length == firstSparse.experts().length,
          "Invalid shrink plan: %s keeps another expert count than %s", block, firstSparse);
    }
  }

  static int[] range(int count) {
    int[] all = new int[count];
    for (int i = 0; i < count; i++) {
      all[i] = i;
    }
    return all;
  }

  public ModelShape source() {
    return source;
  }

  public List<KeptBlock> blocks() {
    return blocks;
  }

  /** The kept block with source index b, or -1 when it is dropped: its position in the new model. */
  public int newIndex(int sourceBlock) {
    for (int i = 0; i < blocks.size(); i++) {
      if (blocks.get(i).source() == sourceBlock) {
        return i;
      }
    }
    return -1;
  }

  /** MLP channels per dense block (the source width when every kept block is sparse). */
  public int intermediate() {
    return blocks.stream().mapToInt(b -> b.mlpChannels().length).filter(n -> n > 0).findFirst().orElse(source.intermediate());
  }

  public int kvHeads() {
    return blocks.get(0).kvGroups().length;
  }

  public int heads() {
    return kvHeads() * source.headsPerGroup();
  }

  /** Routed experts per sparse block (the source count on a dense model, where there are none). */
  public int experts() {
    return blocks.stream().mapToInt(b -> b.experts().length).filter(n -> n > 0).findFirst().orElse(source.experts());
  }
}
