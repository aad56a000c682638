package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;
import java.util.Optional;

/**
 * Llama, Mistral and Qwen2: RMSNorm, grouped-query attention, SwiGLU. Qwen2 adds q/k/v biases;
 * Llama adds them with {@code attention_bias} and MLP biases with {@code mlp_bias}. Qwen3 adds
 * per-head q/k RMSNorms; Mixtral, Qwen2-MoE and Qwen3-MoE replace the MLP of their sparse layers
 * with a {@link MixtureOfExperts}.
 */
final class LlamaArchitecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe");
  }

  @Override
  public List<String> namePrefixes() {
    return List.of("model.");
  }

  @Override
  public Blueprint blueprint(ModelConfig config, String prefix) {
    String modelType = config.modelType();
    DecoderShape shape = DecoderShape.of(config);
    int hidden = shape.hidden();
    int layers = shape.layers();
    int heads = shape.heads();
    int kvHeads = shape.kvHeads();
    int headDim = shape.headDim();
    int intermediate = shape.intermediate();
    int vocab = shape.vocab();
    boolean qwen2Family = modelType.equals("qwen2") || modelType.equals("qwen2_moe");
    boolean qkvBias = qwen2Family ? config.booleanValue("qkv_bias", true) : config.booleanValue("attention_bias", false);
    boolean outputBias = !qwen2Family && config.booleanValue("attention_bias", false);
    boolean qkNorm = hasQkNorm(modelType);
    Optional<MixtureOfExperts> moe = MixtureOfExperts.of(config);
    boolean mlpBias = config.booleanValue("mlp_bias", false);

    Blueprint.Builder blueprint = Blueprint.builder(modelType, layers);
    blueprint.tensor(prefix + "embed_tokens.weight", TensorRole.EMBEDDING, vocab, hidden);
    for (int b = 0; b < layers; b++) {
      String block = prefix + "layers." + b + ".";
      blueprint.norm(block + "input_layernorm", hidden, false);
      blueprint.linear(b, block, "self_attn.q_proj", (long) heads * headDim, hidden, false, "attention_input", qkvBias);
      blueprint.linear(b, block, "self_attn.k_proj", (long) kvHeads * headDim, hidden, false, "attention_input", qkvBias);
      blueprint.linear(b, block, "self_attn.v_proj", (long) kvHeads * headDim, hidden, false, "attention_input", qkvBias);
      if (qkNorm) {
        blueprint.norm(block + "self_attn.q_norm", headDim, false);
        blueprint.norm(block + "self_attn.k_norm", headDim, false);
      }
      blueprint.linear(b, block, "self_attn.o_proj", hidden, (long) heads * headDim, false, "attention_output", outputBias);
      blueprint.norm(block + "post_attention_layernorm", hidden, false);
      if (moe.isPresent() && moe.get().isSparse(b)) {
        moe.get().addTo(blueprint, b, block, hidden);
      } else {
        blueprint.linear(b, block, "mlp.gate_proj", intermediate, hidden, false, "mlp_input", mlpBias);
        blueprint.linear(b, block, "mlp.up_proj", intermediate, hidden, false, "mlp_input", mlpBias);
        blueprint.linear(b, block, "mlp.down_proj", hidden, intermediate, false, "mlp_hidden", mlpBias);
      }
    }
    blueprint.norm(prefix + "norm", hidden, false);
    addHead(blueprint, config, "lm_head.weight", vocab, hidden, false);
    return blueprint.build();
  }

  /** Qwen3 and Qwen3-MoE normalise each head of q and k (RMSNorm over head_dim) before RoPE. */
  static boolean hasQkNorm(String modelType) {
    return modelType.equals("qwen3") || modelType.equals("qwen3_moe");
  }

  /** An output head: required unless tied to the input embedding (then a saved copy is allowed). */
  static void addHead(Blueprint.Builder blueprint, ModelConfig config, String name, long vocab, long width, boolean tiedByDefault) {
    if (config.booleanValue("tie_word_embeddings", tiedByDefault)) {
      blueprint.optionalTensor(name, TensorRole.LM_HEAD, vocab, width);
    } else {
      blueprint.tensor(name, TensorRole.LM_HEAD, vocab, width);
    }
  }
}
