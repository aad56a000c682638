package dev.sparkprune.tensorio.arch;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;

/**
 * DeepSeek-V3's multi-head latent attention (MLA) and block settings resolved once from
 * config.json, with transformers' DeepseekV3Config defaults for absent keys. Queries come from
 * {@code q_proj}, or through a low-rank {@code q_a_proj} -> {@code q_a_layernorm} -> {@code
 * q_b_proj} when q_lora_rank is set; keys and values from {@code kv_a_proj_with_mqa} (a
 * kv_lora_rank latent plus one shared rope key of qk_rope_head_dim) -> {@code kv_a_layernorm} ->
 * {@code kv_b_proj} (per head: qk_nope_head_dim key dims, v_head_dim value dims). Read by the
 * blueprint and the forward pass.
 */
public record DeepseekConfig(
    int hidden, int layers, int heads, int qLoraRank, int kvLoraRank, int qkNopeDim, int qkRopeDim, int vHeadDim,
    int intermediate, int vocab, boolean attentionBias, boolean ropeInterleave, int mtpLayers, double softmaxScale) {

  public static DeepseekConfig resolve(ModelConfig config) {
    int heads = config.requireInt("num_attention_heads");
    int kvHeads = config.optionalInt("num_key_value_heads").orElse(heads);
    // MLA gives every query head its own key and value: kv_b_proj has heads x (nope + v) rows.
    ValidationException.check(
        kvHeads == heads,
        "Invalid model config %s: num_key_value_heads %d must equal num_attention_heads %d for multi-head latent attention",
        config.location(), kvHeads, heads);
    int qkNope = config.requireInt("qk_nope_head_dim");
    int qkRope = config.requireInt("qk_rope_head_dim");
    ValidationException.check(
        qkRope % 2 == 0, "Invalid model config %s: qk_rope_head_dim %d must be even (rotary pairs)", config.location(), qkRope);
    return new DeepseekConfig(
        config.requireInt("hidden_size"),
        config.requireInt("num_hidden_layers"),
        heads,
        // null means no query LoRA (Moonlight, V2-Lite); absent, transformers' default 1536.
        config.has("q_lora_rank") ? config.nonNegativeInt("q_lora_rank", 0) : 1536,
        config.requireInt("kv_lora_rank"),
        qkNope,
        qkRope,
        config.requireInt("v_head_dim"),
        config.requireInt("intermediate_size"),
        config.requireInt("vocab_size"),
        config.booleanValue("attention_bias", false),
        config.booleanValue("rope_interleave", true),
        config.nonNegativeInt("num_nextn_predict_layers", 0),
        softmaxScale(config, qkNope + qkRope));
  }

  /** Query and key width per head: the no-rope and rope parts. */
  public int qkHeadDim() {
    return qkNopeDim + qkRopeDim;
  }

  public boolean hasQueryLora() {
    return qLoraRank > 0;
  }

  /**
   * qk_head_dim^-0.5, times mscale^2 with mscale = 0.1 * mscale_all_dim * ln(factor) + 1 when
   * rope_scaling gives a non-zero mscale_all_dim and factor > 1 (DeepseekV3Attention's scaling:
   * yarn's attention factor applies to cos/sin, this one to the scores).
   */
  static double softmaxScale(ModelConfig config, int qkHeadDim) {
    double scale = Math.pow(qkHeadDim, -0.5);
    JsonNode scaling = config.json().get("rope_scaling");
    if (scaling == null || !scaling.isObject()) {
      return scale;
    }
    double allDim = scaling.path("mscale_all_dim").asDouble(0);
    double factor = scaling.path("factor").asDouble(1);
    if (allDim != 0 && factor > 1) {
      double mscale = 0.1 * allDim * Math.log(factor) + 1.0;
      scale *= mscale * mscale;
    }
    return scale;
  }
}
