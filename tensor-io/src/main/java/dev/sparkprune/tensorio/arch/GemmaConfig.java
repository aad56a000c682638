package dev.sparkprune.tensorio.arch;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;

/**
 * Gemma-2 and Gemma-3 text settings resolved once from config.json, with Hugging Face's
 * defaults ({@code Gemma2Config}, {@code Gemma3TextConfig}) for absent keys: the multimodal
 * Gemma-3 checkpoints' {@code text_config} omits many. Read by the blueprint and the forward pass.
 */
public final class GemmaConfig {
  private final ModelConfig decoder;
  private final boolean gemma3;
  private final int hidden;
  private final int layers;
  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final int intermediate;
  private final int vocab;
  private final int maxPositions;
  private final double eps;
  private final double ropeTheta;
  private final double localRopeTheta;
  private final double queryPreAttnScalar;
  private final double attentionSoftcap;
  private final double finalSoftcap;
  private final int slidingWindow;
  private final boolean[] sliding;
  private final boolean attentionBias;

  private GemmaConfig(ModelConfig decoder, boolean gemma3) {
    this.decoder = decoder;
    this.gemma3 = gemma3;
    this.hidden = decoder.optionalInt("hidden_size").orElse(2304);
    this.layers = decoder.requireInt("num_hidden_layers");
    this.heads = decoder.optionalInt("num_attention_heads").orElse(8);
    this.kvHeads = decoder.optionalInt("num_key_value_heads").orElse(4);
    ValidationException.check(
        heads % kvHeads == 0,
        "Invalid model config %s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
        decoder.location(),
        heads,
        kvHeads);
    this.headDim = decoder.optionalInt("head_dim").orElse(256);
    this.intermediate = decoder.optionalInt("intermediate_size").orElse(9216);
    this.vocab = decoder.optionalInt("vocab_size").orElse(gemma3 ? 262_208 : 256_000);
    this.maxPositions = decoder.optionalInt("max_position_embeddings").orElse(gemma3 ? 131_072 : 8192);
    this.eps = positive("rms_norm_eps", 1e-6);
    this.ropeTheta = positive("rope_theta", gemma3 ? 1_000_000.0 : 10_000.0);
    this.localRopeTheta = gemma3 ? positive("rope_local_base_freq", 10_000.0) : ropeTheta;
    this.queryPreAttnScalar = positive("query_pre_attn_scalar", 256);
    this.attentionSoftcap = softcap("attn_logit_softcapping", gemma3 ? 0 : 50.0);
    this.finalSoftcap = softcap("final_logit_softcapping", gemma3 ? 0 : 30.0);
    this.slidingWindow = decoder.optionalInt("sliding_window").orElse(4096);
    this.sliding = slidingLayers(gemma3 ? decoder.optionalInt("sliding_window_pattern").orElse(6) : 2);
    this.attentionBias = decoder.booleanValue("attention_bias", false);
  }

  /** The decoder's config: {@code text_config} of a multimodal {@code gemma3} checkpoint, else the root. */
  public static ModelConfig decoderConfig(ModelConfig config) {
    return config.modelType().equals("gemma3") ? config.section("text_config").orElseThrow(
        () -> new ValidationException("Invalid model config " + config.location() + ": model_type gemma3 needs a text_config object")) : config;
  }

  public static GemmaConfig resolve(ModelConfig config) {
    return new GemmaConfig(decoderConfig(config), !config.modelType().equals("gemma2"));
  }

  /** Absent: the default; null: no soft-capping (0); else a positive number. */
  private double softcap(String key, double defaultValue) {
    if (!decoder.has(key)) {
      return defaultValue;
    }
    return decoder.json().get(key).isNull() ? 0 : positive(key, defaultValue);
  }

  private double positive(String key, double defaultValue) {
    double value = decoder.doubleValue(key, defaultValue);
    ValidationException.check(
        value > 0 && Double.isFinite(value), "Invalid model config %s: %s must be a positive number, found %s", decoder.location(), key, value);
    return value;
  }

  /** {@code layer_types} when given, else Hugging Face's rule: layer i slides unless (i + 1) % pattern == 0. */
  private boolean[] slidingLayers(int pattern) {
    boolean[] out = new boolean[layers];
    JsonNode types = decoder.json().get("layer_types");
    if (types == null || types.isNull()) {
      for (int i = 0; i < layers; i++) {
        out[i] = (i + 1) % pattern != 0;
      }
      return out;
    }
    ValidationException.check(
        types.isArray() && types.size() == layers,
        "Invalid model config %s: layer_types must list %d entries (num_hidden_layers), found %s",
        decoder.location(),
        layers,
        types.isArray() ? types.size() + " entries" : types);
    for (int i = 0; i < layers; i++) {
      String type = types.get(i).asText("");
      ValidationException.check(
          type.equals("sliding_attention") || type.equals("full_attention"),
          "Invalid model config %s: layer_types[%d] is %s; expected sliding_attention or full_attention",
          decoder.location(),
          i,
          types.get(i));
      out[i] = type.equals("sliding_attention");
    }
    return out;
  }

  public ModelConfig decoder() {
    return decoder;
  }

  /** Gemma-3: q/k norms, local rope base, rope_scaling on global layers only. */
  public boolean gemma3() {
    return gemma3;
  }

  public int hidden() {
    return hidden;
  }

  public int layers() {
    return layers;
  }

  public int heads() {
    return heads;
  }

  public int kvHeads() {
    return kvHeads;
  }

  public int headDim() {
    return headDim;
  }

  public int intermediate() {
    return intermediate;
  }

  public int vocab() {
    return vocab;
  }

  public int maxPositions() {
    return maxPositions;
  }

  public double eps() {
    return eps;
  }

  public double ropeTheta() {
    return ropeTheta;
  }

  /** Rope base of sliding-window layers: Gemma-3's rope_local_base_freq, Gemma-2's rope_theta. */
  public double localRopeTheta() {
    return localRopeTheta;
  }

  public double queryPreAttnScalar() {
    return queryPreAttnScalar;
  }

  /** tanh soft-cap of attention scores; 0 = none. */
  public double attentionSoftcap() {
    return attentionSoftcap;
  }

  /** tanh soft-cap of the final logits; 0 = none. */
  public double finalSoftcap() {
    return finalSoftcap;
  }

  public int slidingWindow() {
    return slidingWindow;
  }

  public boolean sliding(int layer) {
    return sliding[layer];
  }

  public boolean attentionBias() {
    return attentionBias;
  }

  public boolean tied() {
    return decoder.booleanValue("tie_word_embeddings", true);
  }
}
