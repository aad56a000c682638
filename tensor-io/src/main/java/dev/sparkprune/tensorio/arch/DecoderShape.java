package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;

/**
 * The sizes of a Llama-style decoder read from config.json: width, grouped-query heads (kv heads
 * default to the heads; head_dim to hidden / heads), MLP width and vocabulary. One reading for
 * the blueprint and the forward pass of an architecture.
 */
public record DecoderShape(int hidden, int layers, int heads, int kvHeads, int headDim, int intermediate, int vocab) {
  public static DecoderShape of(ModelConfig config) {
    return of(config, config.requireInt("hidden_size") / config.requireInt("num_attention_heads"));
  }

  /** As {@link #of(ModelConfig)}, with head_dim {@code defaultHeadDim} where the config has none (gpt-oss: 64). */
  public static DecoderShape of(ModelConfig config, int defaultHeadDim) {
    int hidden = config.requireInt("hidden_size");
    int heads = config.requireInt("num_attention_heads");
    int kvHeads = config.optionalInt("num_key_value_heads").orElse(heads);
    ValidationException.check(
        heads % kvHeads == 0,
        "Invalid model config %s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
        config.location(),
        heads,
        kvHeads);
    return new DecoderShape(
        hidden,
        config.requireInt("num_hidden_layers"),
        heads,
        kvHeads,
        config.optionalInt("head_dim").orElse(defaultHeadDim),
        config.requireInt("intermediate_size"),
        config.requireInt("vocab_size"));
  }
}
