package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.FusedExpertSlice;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/** What every architecture's model shares: its weights, BLAS, layout and size limits. */
abstract class BaseDecoderModel implements DecoderModel {
  protected final ArchiveWeights weights;
  protected final LinearAlgebra linalg;
  protected final ModelLayout layout;
  private final int vocab;
  private final int maxPositions;

  BaseDecoderModel(ArchiveWeights weights, LinearAlgebra linalg, int vocab, int maxPositions) {
    this.weights = weights;
    this.linalg = linalg;
    this.layout = weights.layout();
    this.vocab = vocab;
    this.maxPositions = maxPositions;
  }

  static ModelConfig config(ArchiveWeights weights) {
    return weights.archive().config();
  }

  @Override
  public ModelLayout layout() {
    return layout;
  }

  @Override
  public int vocabSize() {
    return vocab;
  }

  @Override
  public int maxPositions() {
    return maxPositions;
  }

  /** Checks the batch, then copies each token's row of {@code table} into [tokens x width]. */
  protected float[] lookup(int[][] tokens, float[] table, int width) {
    int length = Embeddings.checkTokens(tokens, vocab, maxPositions);
    float[] values = new float[tokens.length * length * width];
    for (int s = 0; s < tokens.length; s++) {
      for (int t = 0; t < length; t++) {
        System.arraycopy(table, tokens[s][t] * width, values, (s * length + t) * width, width);
      }
    }
    return values;
  }

  /** Rows of the embedding table {@code table} [vocab x width] for a batch, unscaled. */
  protected HiddenStates embedTokens(int[][] tokens, String table, int width) throws IOException {
    return new HiddenStates(tokens.length, tokens[0].length, width, lookup(tokens, weights.cached(table), width));
  }

  /**
   * Logits of one sequence through the final RMSNorm ({@code bodyPrefix + "norm.weight"}) and the
   * head: {@code lm_head.weight}, or the embedding where tied.
   */
  protected float[] rmsNormHeadLogits(HiddenStates hidden, int sequence, String bodyPrefix, double eps) throws IOException {
    HiddenStates one = hidden.slice(sequence, 1);
    int width = one.width();
    float[] x = Layers.rmsNorm(one.values(), one.tokens(), width, weights.cached(bodyPrefix + "norm.weight"), eps);
    float[] head = weights.cached(weights.contains("lm_head.weight") ? "lm_head.weight" : bodyPrefix + "embed_tokens.weight");
    return Layers.linear(linalg, x, one.tokens(), width, head, vocabSize(), null);
  }

  /** The sparse MoE of a block named {@code prefix + ...} ({@code hidden} wide). */
  protected MoeBlock moeBlock(MixtureOfExperts moe, int block, String prefix, int hidden) {
    return MoeBlock.of(linalg, moe, layout.blocks().get(block), prefix, hidden);
  }

  /** The routed experts' tensors of a sparse block: their linears, or the fused tensors and their biases. */
  protected Set<String> routedExpertTensors(MixtureOfExperts moe, int block, String prefix) {
    Set<String> names = new TreeSet<>();
    if (moe.fused()) {
      for (String fused : new String[] {moe.fusedGateUp(), moe.fusedDown()}) {
        names.add(prefix + fused);
        names.add(prefix + fused + "_bias");
      }
    }
    for (Linear linear : layout.blocks().get(block).linears()) {
      if (linear.isRoutedExpert()) {
        names.add(linear.tensorName());
      }
    }
    return names;
  }

  /** The block's tensors without its routed experts. */
  protected BlockWeights loadWithoutExperts(MixtureOfExperts moe, int block, String prefix) throws IOException {
    return Embeddings.loadBlock(weights, block, prefix, routedExpertTensors(moe, block, prefix));
  }

  /**
   * Expert e's tensors alone; for fused experts its slices (positioned reads of its rows only)
   * under {@link FusedExpertSlice#expertSliceName}, so the values say which expert they are.
   */
  protected BlockWeights loadExpert(MixtureOfExperts moe, int block, String prefix, int expert) throws IOException {
    Map<String, float[]> tensors = new HashMap<>();
    if (moe.fused()) {
      for (String fused : new String[] {moe.fusedGateUp(), moe.fusedDown()}) {
        tensors.put(FusedExpertSlice.expertSliceName(prefix + fused, expert), weights.readRows(prefix + fused, expert, 1));
        tensors.put(FusedExpertSlice.expertSliceName(prefix + fused + "_bias", expert), weights.readRows(prefix + fused + "_bias", expert, 1));
      }
    }
    for (Linear linear : layout.blocks().get(block).linears()) {
      // A fused expert's linears are slices of the tensors read above.
      if (linear.isRoutedExpert() && linear.expert().get().index() == expert && linear.fusedSlice().isEmpty()) {
        tensors.put(linear.tensorName(), weights.read(linear.tensorName()));
      }
    }
    if (tensors.isEmpty()) {
      throw new IllegalArgumentException("Block " + block + " has no routed expert " + expert);
    }
    return new BlockWeights(block, tensors);
  }

  @Override
  public void close() throws IOException {
    weights.close();
  }
}
