package dev.sparkprune.scoring.structure;

import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.tensorio.arch.Block;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.shrink.ModelShape;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs chunks of calibration samples through the dense model, block-major (each block's weights
 * loaded once for all chunks), collecting what shrinking decides from: depth scores and, per
 * block, width statistics, expert saliency and weight norms. Memory: one block's weights, the
 * chunks' hidden states and the inputs of the last {@code maxSpan} blocks.
 */
public final class StructureCalibration {
  private StructureCalibration() {}

  /** @param chunks chunk index to its token windows (equal lengths) */
  public static List<ChunkSummary> run(DecoderModel model, ModelShape shape, Map<Integer, int[][]> chunks, int maxSpan) throws IOException {
    int blocks = shape.blocks();
    AttentionGroups groups = new AttentionGroups(shape.heads(), shape.kvHeads(), shape.headDim());
    List<Integer> order = new ArrayList<>(chunks.keySet());
    order.sort(null);
    Map<Integer, HiddenStates> states = new HashMap<>();
    Map<Integer, DepthScores.Accumulator> depth = new HashMap<>();
    Map<Integer, List<BlockSummary>> summaries = new HashMap<>();
    for (int chunk : order) {
      states.put(chunk, model.embed(chunks.get(chunk)));
      depth.put(chunk, new DepthScores.Accumulator(blocks, maxSpan));
      summaries.put(chunk, new ArrayList<>());
    }
    for (int b = 0; b < blocks; b++) {
      BlockWeights weights = model.loadBlock(b);
      Norms norms = norms(model.layout().blocks().get(b), weights, shape, groups);
      for (int chunk : order) {
        WidthStatistics statistics = new WidthStatistics(shape.isSparse(b) ? shape.experts() : 0);
        HiddenStates input = states.get(chunk);
        HiddenStates output = model.runBlock(weights, input, statistics);
        depth.get(chunk).observe(b, input.values(), output.values(), input.tokens(), input.width());
        summaries.get(chunk).add(norms.summary(b, statistics));
        states.put(chunk, output);
      }
    }
    List<ChunkSummary> out = new ArrayList<>();
    for (int chunk : order) {
      out.add(new ChunkSummary(chunk, depth.get(chunk).result(), summaries.get(chunk)));
    }
    return out;
  }

  /**
   * A block's weight norms the width scores multiply the statistics with (empty where the block
   * has no such part): from its dense linears alone, so a block read without its routed experts
   * gives the same.
   */
  public record Norms(double[] down, double[] o, double[] mlp, double[] kv) implements java.io.Serializable {
    /** The block's summary of one chunk's statistics. */
    public BlockSummary summary(int block, WidthStatistics statistics) {
      return new BlockSummary(block, statistics, down, o, mlp, kv);
    }
  }

  /** Block {@code block}'s norms from {@code weights}, which must hold its dense (non-expert) linears. */
  public static Norms norms(ModelLayout layout, int block, BlockWeights weights, ModelShape shape) {
    return norms(layout.blocks().get(block), weights, shape, new AttentionGroups(shape.heads(), shape.kvHeads(), shape.headDim()));
  }

  private static Norms norms(Block block, BlockWeights w, ModelShape shape, AttentionGroups groups) {
    Map<String, float[]> byName = new HashMap<>();
    for (Linear linear : block.linears()) {
      if (linear.expert().isEmpty()) {
        byName.put(linear.name(), w.tensor(linear.tensorName()));
      }
    }
    int hidden = shape.hidden();
    // Latent attention (DeepSeek-V3) has no KV groups to remove: no head norms.
    double[] o = shape.headsRemovable() ? WidthScores.columnNorms(byName.get("self_attn.o_proj"), hidden, shape.heads() * shape.headDim()) : new double[0];
    double[] kv = shape.headsRemovable()
        ? WidthScores.kvGroupWeightNorms(
            byName.get("self_attn.q_proj"), byName.get("self_attn.k_proj"), byName.get("self_attn.v_proj"), byName.get("self_attn.o_proj"),
            hidden, groups)
        : new double[0];
    if (!byName.containsKey("mlp.down_proj")) {
      return new Norms(new double[0], o, new double[0], kv);
    }
    int width = shape.intermediate();
    double[] down = WidthScores.columnNorms(byName.get("mlp.down_proj"), hidden, width);
    double[] mlp = WidthScores.mlpChannelWeightNorms(byName.get("mlp.gate_proj"), byName.get("mlp.up_proj"), byName.get("mlp.down_proj"), hidden, width);
    return new Norms(down, o, mlp, kv);
  }
}
