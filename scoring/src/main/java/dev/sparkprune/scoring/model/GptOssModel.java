package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.DecoderShape;
import dev.sparkprune.tensorio.arch.GptOssArchitecture;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.IOException;
import java.util.List;
import java.util.Optional;

/**
 * gpt-oss as transformers' GptOssForCausalLM computes it: RMSNorm, grouped-query attention with
 * biases, rope (yarn as configured) on whole heads, scores scaled by head_dim^-0.5 and
 * normalised together with one sink logit per head whose probability is dropped, a sliding
 * window on the layers layer_types marks, and in every block a {@link MoeBlock} of fused experts
 * behind a router with a bias (softmax over the top-k logits).
 */
final class GptOssModel extends BaseDecoderModel {
  private final DecoderShape shape;
  private final MixtureOfExperts moe;
  private final double eps;
  private final Rope rope;
  private final boolean[] sliding;
  private final int window;

  GptOssModel(ArchiveWeights weights, LinearAlgebra linalg) {
    super(weights, linalg, config(weights).requireInt("vocab_size"), Models.maxPositions(config(weights), weights.layout().modelType()));
    ModelConfig config = config(weights);
    this.shape = GptOssArchitecture.shape(config);
    this.moe = MixtureOfExperts.of(config).orElseThrow();
    this.eps = config.doubleValue("rms_norm_eps", 1e-5);
    this.rope = new Rope(config, shape.headDim(), shape.headDim(), maxPositions());
    this.sliding = GptOssArchitecture.layerTypes(config, shape.layers());
    this.window = config.optionalInt("sliding_window").orElse(128);
  }

  @Override
  public HiddenStates embed(int[][] tokens) throws IOException {
    return embedTokens(tokens, "model.embed_tokens.weight", shape.hidden());
  }

  @Override
  public BlockWeights loadBlock(int block) throws IOException {
    return Embeddings.loadBlock(weights, block, "model.layers." + block + ".");
  }

  @Override
  public HiddenStates runBlock(BlockWeights w, HiddenStates input, InputHook hook) {
    MoeInput moeInput = attend(w, input, hook);
    return moeInput.finish(moe(w.block()).orElseThrow().run(w, moeInput.x(), input.tokens(), input.sequences(), hook));
  }

  @Override
  public Optional<MoeBlock> moe(int block) {
    return Optional.of(moeBlock(moe, block, blockPrefix(block), shape.hidden()));
  }

  @Override
  public BlockWeights loadBlockWithoutExperts(int block) throws IOException {
    return loadWithoutExperts(moe, block, blockPrefix(block));
  }

  @Override
  public BlockWeights loadExpert(int block, int expert) throws IOException {
    return loadExpert(moe, block, blockPrefix(block), expert);
  }

  @Override
  public MoeInput attend(BlockWeights w, HiddenStates input, InputHook hook) {
    int tokens = input.tokens();
    int sequences = input.sequences();
    int hidden = shape.hidden();
    int heads = shape.heads();
    int kvHeads = shape.kvHeads();
    int headDim = shape.headDim();
    String block = blockPrefix(w.block());
    List<Linear> linears = layout.blocks().get(w.block()).linears();
    Linear qProj = linears.get(0);
    Linear kProj = linears.get(1);
    Linear vProj = linears.get(2);
    Linear oProj = linears.get(3);
    float[] h = input.values().clone();

    float[] x = Layers.rmsNorm(h, tokens, hidden, w.tensor(block + "input_layernorm.weight"), eps);
    hook.accept(List.of(qProj, kProj, vProj), x, tokens, sequences);
    float[] q = Fused.apply(linalg, w, qProj, x, tokens);
    float[] k = Fused.apply(linalg, w, kProj, x, tokens);
    float[] v = Fused.apply(linalg, w, vProj, x, tokens);
    rope.apply(q, sequences, input.length(), heads);
    rope.apply(k, sequences, input.length(), kvHeads);
    AttentionShape attentionShape = new AttentionShape(
        AttentionShape.causal(headDim).scale(), 0, sliding[w.block()] ? window : 0, w.tensor(block + "self_attn.sinks"));
    float[] attention = Layers.attention(linalg, q, k, v, sequences, input.length(), heads, kvHeads, headDim, attentionShape);
    hook.accept(List.of(oProj), attention, tokens, sequences);
    Layers.addInPlace(h, Fused.apply(linalg, w, oProj, attention, tokens));
    return moeInput(w, new HiddenStates(sequences, input.length(), hidden, h));
  }

  @Override
  public MoeInput moeInput(BlockWeights w, HiddenStates residual) {
    float[] x = Layers.rmsNorm(
        residual.values(), residual.tokens(), shape.hidden(), w.tensor(blockPrefix(w.block()) + "post_attention_layernorm.weight"), eps);
    return new MoeInput(residual, x);
  }

  private static String blockPrefix(int block) {
    return "model.layers." + block + ".";
  }

  @Override
  public float[] logits(HiddenStates hiddenStates, int sequence) throws IOException {
    return rmsNormHeadLogits(hiddenStates, sequence, "model.", eps);
  }

}
