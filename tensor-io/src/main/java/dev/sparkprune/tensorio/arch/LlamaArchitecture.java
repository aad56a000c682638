package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;
import java.util.Optional;

/**
 * Llama, Mistral and Qwen2: RMSNorm, grouped-query attention, SwiGLU. Qwen2 adds q/k/v biases;
 * Llama adds them with {@code attention_bias} and MLP biases with {@code mlp_bias}. Qwen3 adds
 * per-head q/k RMSNorms; Mixtral, Qwen2-MoE and Qwen3-MoE replace the MLP of their sparse layers
 * with a {@link MixtureOfExperts}. GLM-4.5 ({@code glm4_moe}) is Llama-shaped too: q/k/v biases
 * with {@code attention_bias} (never on o), q/k norms with {@code use_qk_norm}, partial rotary,
 * sigmoid group-limited MoE from first_k_dense_replace on, and multi-token-prediction layers.
 */
final class LlamaArchitecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe", "glm4_moe");
  }

  @Override
  public List<String> namePrefixes() {
    return List.of("model.");
  }

  @Override
  public int mtpBlocks(ModelConfig decoder) {
    return decoder.modelType().equals("glm4_moe") ? decoder.nonNegativeInt("num_nextn_predict_layers", 0) : 0;
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
    boolean glm = modelType.equals("glm4_moe");
    boolean qkvBias = qwen2Family ? config.booleanValue("qkv_bias", true) : config.booleanValue("attention_bias", false);
    boolean outputBias = !qwen2Family && !glm && config.booleanValue("attention_bias", false);
    boolean qkNorm = hasQkNorm(config);
    Optional<MixtureOfExperts> moe = MixtureOfExperts.of(config);
    boolean mlpBias = config.booleanValue("mlp_bias", false);

    Blueprint.Builder blueprint = Blueprint.builder(modelType, layers);
    blueprint.tensor(prefix + "embed_tokens.weight", TensorRole.EMBEDDING, vocab, hidden);
    DecoderLayer layer = (builder, b, block) -> {
      builder.norm(block + "input_layernorm", hidden, false);
      builder.linear(b, block, "self_attn.q_proj", (long) heads * headDim, hidden, false, "attention_input", qkvBias);
      builder.linear(b, block, "self_attn.k_proj", (long) kvHeads * headDim, hidden, false, "attention_input", qkvBias);
      builder.linear(b, block, "self_attn.v_proj", (long) kvHeads * headDim, hidden, false, "attention_input", qkvBias);
      if (qkNorm) {
        builder.norm(block + "self_attn.q_norm", headDim, false);
        builder.norm(block + "self_attn.k_norm", headDim, false);
      }
      builder.linear(b, block, "self_attn.o_proj", hidden, (long) heads * headDim, false, "attention_output", outputBias);
      builder.norm(block + "post_attention_layernorm", hidden, false);
      if (moe.isPresent() && moe.get().isSparse(b)) {
        moe.get().addTo(builder, b, block, hidden);
      } else {
        addDenseMlp(builder, b, block, intermediate, hidden, mlpBias);
      }
    };
    for (int b = 0; b < layers; b++) {
      layer.add(blueprint, b, prefix + "layers." + b + ".");
    }
    for (int b = layers; b < layers + mtpBlocks(config); b++) {
      int mtpBlock = b;
      blueprint.tensorsOf(DeepseekV3Architecture.mtpLayer(modelType, prefix + "layers." + b + ".", vocab, hidden,
          (builder, block) -> layer.add(builder, mtpBlock, block)), TensorRole.MTP);
    }
    blueprint.norm(prefix + "norm", hidden, false);
    addHead(blueprint, config, "lm_head.weight", vocab, hidden, false);
    return blueprint.build();
  }

  /** One decoder layer's tensors: block index and name prefix. */
  @FunctionalInterface
  private interface DecoderLayer {
    void add(Blueprint.Builder blueprint, int block, String blockPrefix);
  }

  /** A SwiGLU MLP's gate, up and down projections (Llama's {@code mlp.*_proj}). */
  static void addDenseMlp(Blueprint.Builder blueprint, int b, String block, int intermediate, int hidden, boolean bias) {
    blueprint.linear(b, block, "mlp.gate_proj", intermediate, hidden, false, "mlp_input", bias);
    blueprint.linear(b, block, "mlp.up_proj", intermediate, hidden, false, "mlp_input", bias);
    blueprint.linear(b, block, "mlp.down_proj", hidden, intermediate, false, "mlp_hidden", bias);
  }

  /**
   * Qwen3 and Qwen3-MoE normalise each head of q and k (RMSNorm over head_dim) before RoPE;
   * GLM-4.5 does with use_qk_norm.
   */
  static boolean hasQkNorm(ModelConfig config) {
    String modelType = config.modelType();
    return modelType.equals("qwen3") || modelType.equals("qwen3_moe")
        || (modelType.equals("glm4_moe") && config.booleanValue("use_qk_norm", false));
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
