package dev.sparkprune.tensorio.shrink;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.ArrayList;
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
      int routed = source.isSparse(block) ? source.experts() : 0;
      int[] kept = routed == 0 ? new int[0] : checked("experts", block, experts.getOrDefault(block, range(routed)), routed);
      ValidationException.check(
          routed > 0 || !experts.containsKey(block), "Cannot keep experts of block %d: it is a dense block", block);
      blocks.add(new KeptBlock(block, channels, groups, kept));
    }
    checkUniform(blocks);
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
