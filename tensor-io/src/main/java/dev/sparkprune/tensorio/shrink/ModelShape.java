package dev.sparkprune.tensorio.shrink;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.Serializable;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * The dimensions of a Llama-family decoder that shrinking changes, read from config.json: blocks,
 * MLP width, attention heads under GQA, routed experts. Shrinking supports the model types whose
 * blocks are named {@code model.layers.{i}} with Llama's attention and SwiGLU MLP.
 */
public final class ModelShape implements Serializable {
  private static final long serialVersionUID = 1L;
  public static final Set<String> MODEL_TYPES = Set.of("llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe");

  private final String modelType;
  private final int blocks;
  private final int hidden;
  private final int intermediate;
  private final int heads;
  private final int kvHeads;
  private final int headDim;
  /** Null for a dense model (exposed as an Optional). */
  private final MixtureOfExperts moe;

  private ModelShape(
      String modelType, int blocks, int hidden, int intermediate, int heads, int kvHeads, int headDim, MixtureOfExperts moe) {
    this.modelType = Objects.requireNonNull(modelType, "modelType is null");
    this.blocks = blocks;
    this.hidden = hidden;
    this.intermediate = intermediate;
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
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
    int intermediate = moe.isPresent() && type.equals("mixtral") ? 0 : config.optionalInt("intermediate_size").orElse(0);
    return new ModelShape(
        type, config.requireInt("num_hidden_layers"), hidden, intermediate, heads, kvHeads,
        config.optionalInt("head_dim").orElse(hidden / heads), moe.orElse(null));
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
