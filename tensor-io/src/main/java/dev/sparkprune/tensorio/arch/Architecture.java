package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;

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
}
