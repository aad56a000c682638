package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Knows the tensor names and shapes a {@code model_type} uses, from its config alone. */
public interface Architecture {
  /** The {@code model_type} values of config.json this architecture serves. */
  List<String> modelTypes();

  /**
   * Prefixes the decoder's tensor names may carry (checkpoints of a base model and of its
   * LM-head wrapper differ); the first is the canonical one.
   */
  List<String> namePrefixes();

  Blueprint blueprint(ModelConfig config, String prefix);

  /** The decoder's settings: the config itself, or a nested section (Gemma-3's text_config). */
  default ModelConfig decoderConfig(ModelConfig config) {
    return config;
  }

  /** Where the blocks' tensors start: block b's are named {@code blocksPrefix(prefix) + b + "."}. */
  default String blocksPrefix(String namePrefix) {
    return namePrefix + "layers.";
  }

  /** The keys of the decoder config that give the number of blocks; the first present counts. */
  default List<String> blockCountKeys() {
    return List.of("num_hidden_layers");
  }

  /**
   * Multi-token-prediction layers stored after the blocks ({@code num_nextn_predict_layers}:
   * DeepSeek-V3, GLM-4.5), named as blocks {@code num_hidden_layers} onwards; 0 for most.
   */
  default int mtpBlocks(ModelConfig decoder) {
    return 0;
  }

  /**
   * Activation keys of the decoder config, each with the values this architecture's forward
   * pass computes; any other value is refused. The default is the gated-SiLU (Llama) family's.
   */
  default Map<String, Set<String>> activations() {
    return Map.of("hidden_act", Set.of("silu", "swish"));
  }

  /** Whether the forward pass rotates q and k; then rope_theta and rope_scaling are checked. */
  default boolean rotary() {
    return true;
  }
}
