package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;

/**
 * gpt-oss as transformers stores it (GptOssForCausalLM, weights in BF16): grouped-query
 * attention with biases on q, k, v and o and one sink logit per head, layers alternating
 * between sliding-window and full attention ({@code layer_types}), and in every block a MoE of
 * fused expert tensors ({@link MixtureOfExperts#fused()}) behind a router with a bias. The
 * attention linears are prunable, and so is each expert's gate, up and down: slices of the fused
 * tensors ({@link FusedExpertSlice}), pruned per expert and written back into them.
 */
public final class GptOssArchitecture implements Architecture {
  /** The clamp of the experts' gate (above) and up (both sides) projections. */
  public static final double SWIGLU_LIMIT = 7.0;
  /** The experts' gate activation: gate * sigmoid(ALPHA * gate). */
  public static final double SWIGLU_ALPHA = 1.702;

  GptOssArchitecture() {}

  @Override
  public List<String> modelTypes() {
    return List.of("gpt_oss");
  }

  @Override
  public List<String> namePrefixes() {
    return List.of("model.");
  }

  @Override
  public Blueprint blueprint(ModelConfig config, String prefix) {
    DecoderShape shape = shape(config);
    MixtureOfExperts moe = MixtureOfExperts.of(config).orElseThrow();
    layerTypes(config, shape.layers());
    // transformers clamps the experts' SwiGLU at 7 whatever swiglu_limit says; the release's own code reads it.
    double limit = config.doubleValue("swiglu_limit", SWIGLU_LIMIT);
    ValidationException.check(
        limit == SWIGLU_LIMIT,
        "Cannot run model_type gpt_oss: swiglu_limit %s in %s is not implemented; transformers' gpt-oss experts clamp at %s",
        config.json().get("swiglu_limit"), config.location(), SWIGLU_LIMIT);
    config.optionalInt("sliding_window");
    int hidden = shape.hidden();
    long qWidth = (long) shape.heads() * shape.headDim();
    long kvWidth = (long) shape.kvHeads() * shape.headDim();
    boolean bias = config.booleanValue("attention_bias", true);
    Blueprint.Builder blueprint = Blueprint.builder("gpt_oss", shape.layers());
    blueprint.tensor(prefix + "embed_tokens.weight", TensorRole.EMBEDDING, shape.vocab(), hidden);
    for (int b = 0; b < shape.layers(); b++) {
      String block = prefix + "layers." + b + ".";
      blueprint.norm(block + "input_layernorm", hidden, false);
      blueprint.linear(b, block, "self_attn.q_proj", qWidth, hidden, false, "attention_input", bias);
      blueprint.linear(b, block, "self_attn.k_proj", kvWidth, hidden, false, "attention_input", bias);
      blueprint.linear(b, block, "self_attn.v_proj", kvWidth, hidden, false, "attention_input", bias);
      blueprint.tensor(block + "self_attn.sinks", TensorRole.ATTENTION_SINKS, shape.heads());
      blueprint.linear(b, block, "self_attn.o_proj", hidden, qWidth, false, "attention_output", bias);
      blueprint.norm(block + "post_attention_layernorm", hidden, false);
      moe.addTo(blueprint, b, block, hidden);
    }
    blueprint.norm(prefix + "norm", hidden, false);
    LlamaArchitecture.addHead(blueprint, config, "lm_head.weight", shape.vocab(), hidden, false);
    return blueprint.build();
  }

  /** The attention shape; intermediate_size is the experts' width, head_dim defaults to 64 (GptOssConfig). */
  public static DecoderShape shape(ModelConfig config) {
    return DecoderShape.of(config, 64);
  }

  /**
   * Whether each layer attends within the sliding window: {@code layer_types} when given (each
   * "sliding_attention" or "full_attention"), else transformers' default, sliding on even layers.
   */
  public static boolean[] layerTypes(ModelConfig config, int layers) {
    boolean[] sliding = new boolean[layers];
    var types = config.json().get("layer_types");
    if (types == null || types.isNull()) {
      for (int b = 0; b < layers; b++) {
        sliding[b] = b % 2 == 0;
      }
      return sliding;
    }
    ValidationException.check(
        types.isArray() && types.size() == layers,
        "Invalid model config %s: layer_types must list one type per layer (%d), found %s", config.location(), layers, types);
    for (int b = 0; b < layers; b++) {
      String type = types.get(b).asText();
      ValidationException.check(
          type.equals("sliding_attention") || type.equals("full_attention"),
          "Invalid model config %s: layer_types[%d] is %s; gpt-oss layers are sliding_attention or full_attention",
          config.location(), b, types.get(b));
      sliding[b] = type.equals("sliding_attention");
    }
    return sliding;
  }
}
