package dev.sparkprune.tensorio.shrink;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.GptOssArchitecture;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.Serializable;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * The dimensions of a decoder that shrinking changes, read from config.json: blocks, MLP width,
 * attention heads under GQA, routed experts, and the multi-token-prediction layers after the
 * blocks. Shrinking supports the model types whose blocks are named {@code model.layers.{i}} with
 * a SwiGLU MLP or MoE: Llama's attention, GLM-4.5's and gpt-oss's (also by KV group), and
 * DeepSeek-V3's latent attention (whose heads are never removed).
 */
public final class ModelShape implements Serializable {
  private static final long serialVersionUID = 1L;
  public static final Set<String> MODEL_TYPES = Set.of(
      "llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "kimi_k2", "glm4_moe", "gpt_oss");
  /** Model types with multi-head latent attention: one latent key/value projection feeds every head. */
  static final Set<String> LATENT_ATTENTION = Set.of("deepseek_v3", "kimi_k2");

  private final String modelType;
  private final int blocks;
  private final int hidden;
  private final int intermediate;
  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final int mtpBlocks;
  /** gpt-oss: which blocks attend within the sliding window; empty for other types. */
  private final boolean[] sliding;
  /** Null for a dense model (exposed as an Optional). */
  private final MixtureOfExperts moe;

  private ModelShape(
      String modelType, int blocks, int hidden, int intermediate, int heads, int kvHeads, int headDim, int mtpBlocks, boolean[] sliding,
      MixtureOfExperts moe) {
    this.modelType = Objects.requireNonNull(modelType, "modelType is null");
    this.blocks = blocks;
    this.hidden = hidden;
    this.intermediate = intermediate;
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.mtpBlocks = mtpBlocks;
    this.sliding = sliding.clone();
    this.moe = moe;
  }

  public static ModelShape of(ModelConfig config) {
    String type = config.modelType();
    ValidationException.check(
        MODEL_TYPES.contains(type),
        "Cannot shrink model_type '%s': shrink supports %s", type, MODEL_TYPES.stream().sorted().toList());
    int hidden = config.requireInt("hidden_size");
    int heads = config.requireInt("num_attention_heads");
    int kvHeads = config.optionalInt("num_key_value_heads").orElse(heads);
    ValidationException.check(
        heads % kvHeads == 0,
        "Cannot shrink %s: num_attention_heads %d is not divisible into num_key_value_heads %d groups",
        config.location(), heads, kvHeads);
    Optional<MixtureOfExperts> moe = MixtureOfExperts.of(config);
    // Mixtral's and gpt-oss's intermediate_size is their experts' width: they have no dense MLP.
    boolean expertsOnly = type.equals("mixtral") || type.equals("gpt_oss");
    int intermediate = expertsOnly ? 0 : config.optionalInt("intermediate_size").orElse(0);
    int headDim = config.optionalInt("head_dim").orElse(type.equals("gpt_oss") ? 64 : hidden / heads);
    boolean mtp = LATENT_ATTENTION.contains(type) || type.equals("glm4_moe");
    int blocks = config.requireInt("num_hidden_layers");
    boolean[] sliding = type.equals("gpt_oss") ? GptOssArchitecture.layerTypes(config, blocks) : new boolean[0];
    return new ModelShape(
        type, blocks, hidden, intermediate, heads, kvHeads, headDim, mtp ? config.nonNegativeInt("num_nextn_predict_layers", 0) : 0,
        sliding, moe.orElse(null));
  }

  public String modelType() {
    return modelType;
  }

  public int blocks() {
    return blocks;
  }

  public int hidden() {
    return hidden;
  }

  /** The dense MLP width (intermediate_size); 0 when no block has a dense MLP of that width (Mixtral). */
  public int intermediate() {
    return intermediate;
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

  /**
   * Multi-token-prediction layers stored after the blocks (num_nextn_predict_layers). A shrunk
   * archive drops them and sets num_nextn_predict_layers to 0: they predict from the source
   * model's last hidden state and experts, which shrinking changes.
   */
  public int mtpBlocks() {
    return mtpBlocks;
  }

  /**
   * Whether the blocks at these source indices may form a model: gpt-oss's must keep sliding and
   * full attention alternating from a sliding first layer, since its reference implementation,
   * llama.cpp and vLLM put the window on even layers whatever layer_types says.
   */
  public boolean keepsLayerPattern(java.util.List<Integer> kept) {
    for (int i = 0; i < kept.size() && sliding.length > 0; i++) {
      if (sliding[kept.get(i)] != (i % 2 == 0)) {
        return false;
      }
    }
    return true;
  }

  /** Whether attention heads can be removed by KV group: not under multi-head latent attention. */
  public boolean headsRemovable() {
    return !LATENT_ATTENTION.contains(modelType);
  }

  public Optional<MixtureOfExperts> moe() {
    return Optional.ofNullable(moe);
  }

  public int headsPerGroup() {
    return heads / kvHeads;
  }

  /** Routed experts per sparse block; 0 for a dense model. */
  public int experts() {
    return moe == null ? 0 : moe.experts();
  }

  public boolean isSparse(int block) {
    return moe != null && moe.isSparse(block);
  }

  /** Whether some block has a dense MLP (whose width --mlp-keep shrinks). */
  public boolean hasDenseMlp() {
    for (int b = 0; b < blocks; b++) {
      if (!isSparse(b)) {
        return intermediate > 0;
      }
    }
    return false;
  }
}
