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
 * Qwen3-MoE run a {@link SparseMoe} in place of the MLP of their sparse layers.
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
    this.rope = new Rope(config, headDim, headDim, maxPositions());
    String firstLinear = layout.blocks().get(0).linears().get(0).tensorName();
    this.bodyPrefix = firstLinear.substring(0, firstLinear.indexOf("layers.0."));
    // The layout knows the q/k norms as norms only for the model types that have them.
    this.qkNorm = layout.roles().get(bodyPrefix + "layers.0.self_attn.q_norm.weight") == TensorRole.NORM;
    this.moe = MixtureOfExperts.of(config);
  }

  @Override
  public HiddenStates embed(int[][] tokens) throws IOException {
    float[] values = lookup(tokens, weights.cached(bodyPrefix + "embed_tokens.weight"), hidden);
    return new HiddenStates(tokens.length, tokens[0].length, hidden, values);
  }

  @Override
  public BlockWeights loadBlock(int block) throws IOException {
    return Embeddings.loadBlock(weights, block, bodyPrefix + "layers." + block + ".");
  }

  @Override
  public HiddenStates runBlock(BlockWeights w, HiddenStates input, InputHook hook) {
    int tokens = input.tokens();
    String block = bodyPrefix + "layers." + w.block() + ".";
    Map<String, Linear> linears = linearsByName(w.block());
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

    x = Layers.rmsNorm(h, tokens, hidden, w.tensor(block + "post_attention_layernorm.weight"), eps);
    if (moe.isPresent() && moe.get().isSparse(w.block())) {
      Layers.addInPlace(h, SparseMoe.run(linalg, moe.get(), w, block, linears, x, tokens, hidden, input.sequences(), hook));
    } else {
      hook.accept(List.of(linears.get("mlp.gate_proj"), linears.get("mlp.up_proj")), x, tokens, input.sequences());
      float[] gate = Fused.swiGlu(linalg, w, linears.get("mlp.gate_proj"), linears.get("mlp.up_proj"), x, tokens);
      hook.accept(List.of(linears.get("mlp.down_proj")), gate, tokens, input.sequences());
      Layers.addInPlace(h, Fused.apply(linalg, w, linears.get("mlp.down_proj"), gate, tokens));
    }
    return new HiddenStates(input.sequences(), input.length(), hidden, h);
  }

  private Map<String, Linear> linearsByName(int block) {
    Map<String, Linear> byName = new HashMap<>();
    layout.blocks().get(block).linears().forEach(linear -> byName.put(linear.name(), linear));
    return byName;
  }

  @Override
  public float[] logits(HiddenStates hiddenStates, int sequence) throws IOException {
    float[] finalNorm = weights.cached(bodyPrefix + "norm.weight");
    float[] head = weights.cached(weights.contains("lm_head.weight") ? "lm_head.weight" : bodyPrefix + "embed_tokens.weight");
    HiddenStates one = hiddenStates.slice(sequence, 1);
    float[] x = Layers.rmsNorm(one.values(), one.tokens(), hidden, finalNorm, eps);
    return Layers.linear(linalg, x, one.tokens(), hidden, head, vocabSize(), null);
  }

}
