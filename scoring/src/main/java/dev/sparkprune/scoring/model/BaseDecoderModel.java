package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.IOException;

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

  @Override
  public void close() throws IOException {
    weights.close();
  }
}
