package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.arch.TensorRole;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Llama, Mistral and Qwen2 as Hugging Face's modeling code computes them: RMSNorm, rotate-half
 * RoPE, grouped-query attention, SwiGLU MLP, optional q/k/v biases, tied or separate LM head.
 * Qwen3 and Qwen3-MoE normalise each head of q and k before RoPE; Mixtral, Qwen2-MoE and
 * Qwen3-MoE run a {@link MoeBlock} in place of the MLP of their sparse layers. GLM-4.5 adds
 * partial rotary (the first partial_rotary_factor of each head, rotate-half within it), q/k
 * norms with use_qk_norm and a sigmoid group-limited MoE with shared experts.
 */
final class LlamaModel extends BaseDecoderModel {
  final int hidden;
  final int heads;
  final int kvHeads;
  final int headDim;
  final double eps;
  final Rope rope;
  final String bodyPrefix;
  final boolean qkNorm;
  final Optional<MixtureOfExperts> moe;

  LlamaModel(ArchiveWeights weights, LinearAlgebra linalg) {
    super(weights, linalg, config(weights).requireInt("vocab_size"), Models.maxPositions(config(weights), weights.layout().modelType()));
    ModelConfig config = config(weights);
    this.hidden = config.requireInt("hidden_size");
    this.heads = config.requireInt("num_attention_heads");
    this.kvHeads = config.optionalInt("num_key_value_heads").orElse(heads);
    this.headDim = config.optionalInt("head_dim").orElse(hidden / heads);
    this.eps = config.doubleValue("rms_norm_eps", 1e-6);
    // transformers rotates int(head_dim * partial_rotary_factor) dimensions (GLM-4.5: half).
    this.rope = new Rope(config, headDim, (int) (headDim * config.doubleValue("partial_rotary_factor", 1.0)), maxPositions());
    String firstLinear = layout.blocks().get(0).linears().get(0).tensorName();
    this.bodyPrefix = firstLinear.substring(0, firstLinear.indexOf("layers.0."));
    // The layout knows the q/k norms as norms only for the model types that have them.
    this.qkNorm = layout.roles().get(bodyPrefix + "layers.0.self_attn.q_norm.weight") == TensorRole.NORM;
    this.moe = MixtureOfExperts.of(config);
  }

  @Override
  public HiddenStates embed(int[][] tokens) throws IOException {
    return embedTokens(tokens, bodyPrefix + "embed_tokens.weight", hidden);
  }

  @Override
  public BlockWeights loadBlock(int block) throws IOException {
    return Embeddings.loadBlock(weights, block, bodyPrefix + "layers." + block + ".");
  }

  @Override
  public HiddenStates runBlock(BlockWeights w, HiddenStates input, InputHook hook) {
    int tokens = input.tokens();
    Optional<MoeBlock> sparse = moe(w.block());
    if (sparse.isPresent()) {
      MoeInput moeInput = attend(w, input, hook);
      return moeInput.finish(sparse.get().run(w, moeInput.x(), tokens, input.sequences(), hook));
    }
    String block = blockPrefix(w.block());
    Map<String, Linear> linears = linearsByName(w.block());
    float[] h = attentionResidual(w, input, hook, linears);
    float[] x = Layers.rmsNorm(h, tokens, hidden, w.tensor(block + "post_attention_layernorm.weight"), eps);
    hook.accept(List.of(linears.get("mlp.gate_proj"), linears.get("mlp.up_proj")), x, tokens, input.sequences());
    float[] gate = Fused.swiGlu(linalg, w, linears.get("mlp.gate_proj"), linears.get("mlp.up_proj"), x, tokens);
    hook.accept(List.of(linears.get("mlp.down_proj")), gate, tokens, input.sequences());
    Layers.addInPlace(h, Fused.apply(linalg, w, linears.get("mlp.down_proj"), gate, tokens));
    return new HiddenStates(input.sequences(), input.length(), hidden, h);
  }

  @Override
  public Optional<MoeBlock> moe(int block) {
    return moe.filter(settings -> settings.isSparse(block)).map(settings -> moeBlock(settings, block, blockPrefix(block), hidden));
  }

  @Override
  public BlockWeights loadBlockWithoutExperts(int block) throws IOException {
    return moe(block).isPresent() ? loadWithoutExperts(moe.get(), block, blockPrefix(block)) : loadBlock(block);
  }

  @Override
  public BlockWeights loadExpert(int block, int expert) throws IOException {
    checkSparse(block);
    return loadExpert(moe.get(), block, blockPrefix(block), expert);
  }

  @Override
  public MoeInput attend(BlockWeights w, HiddenStates input, InputHook hook) {
    checkSparse(w.block());
    float[] h = attentionResidual(w, input, hook, linearsByName(w.block()));
    return moeInput(w, new HiddenStates(input.sequences(), input.length(), hidden, h));
  }

  @Override
  public MoeInput moeInput(BlockWeights w, HiddenStates residual) {
    checkSparse(w.block());
    float[] x = Layers.rmsNorm(residual.values(), residual.tokens(), hidden, w.tensor(blockPrefix(w.block()) + "post_attention_layernorm.weight"), eps);
    return new MoeInput(residual, x);
  }

  private void checkSparse(int block) {
    if (moe(block).isEmpty()) {
      throw new IllegalArgumentException("Block " + block + " of " + layout.modelType() + " has no mixture of experts");
    }
  }

  private String blockPrefix(int block) {
    return bodyPrefix + "layers." + block + ".";
  }

  /** The input plus attention's output: the residual stream the MLP adds to. */
  private float[] attentionResidual(BlockWeights w, HiddenStates input, InputHook hook, Map<String, Linear> linears) {
    int tokens = input.tokens();
    String block = blockPrefix(w.block());
    float[] h = input.values().clone();

    float[] x = Layers.rmsNorm(h, tokens, hidden, w.tensor(block + "input_layernorm.weight"), eps);
    hook.accept(List.of(linears.get("self_attn.q_proj"), linears.get("self_attn.k_proj"), linears.get("self_attn.v_proj")), x, tokens, input.sequences());
    float[] q = Fused.apply(linalg, w, linears.get("self_attn.q_proj"), x, tokens);
    float[] k = Fused.apply(linalg, w, linears.get("self_attn.k_proj"), x, tokens);
    float[] v = Fused.apply(linalg, w, linears.get("self_attn.v_proj"), x, tokens);
    if (qkNorm) {
      q = Layers.rmsNorm(q, tokens * heads, headDim, w.tensor(block + "self_attn.q_norm.weight"), eps);
      k = Layers.rmsNorm(k, tokens * kvHeads, headDim, w.tensor(block + "self_attn.k_norm.weight"), eps);
    }
    rope.apply(q, input.sequences(), input.length(), heads);
    rope.apply(k, input.sequences(), input.length(), kvHeads);
    float[] attention = Layers.causalAttention(linalg, q, k, v, input.sequences(), input.length(), heads, kvHeads, headDim);
    hook.accept(List.of(linears.get("self_attn.o_proj")), attention, tokens, input.sequences());
    Layers.addInPlace(h, Fused.apply(linalg, w, linears.get("self_attn.o_proj"), attention, tokens));
    return h;
  }

  private Map<String, Linear> linearsByName(int block) {
    Map<String, Linear> byName = new HashMap<>();
    layout.blocks().get(block).linears().forEach(linear -> byName.put(linear.name(), linear));
    return byName;
  }

  @Override
  public float[] logits(HiddenStates hiddenStates, int sequence) throws IOException {
    return rmsNormHeadLogits(hiddenStates, sequence, bodyPrefix, eps);
  }


}
