package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The registry of supported {@code model_type}s. */
public final class Architectures {
  private static final Map<String, Architecture> BY_MODEL_TYPE = new LinkedHashMap<>();

  static {
    for (Architecture architecture :
        List.of(
            new LlamaArchitecture(),
            new Gpt2Architecture(),
            new OptArchitecture(),
            new GptNeoxArchitecture(),
            new GemmaArchitecture(),
            new Phi3Architecture(),
            new DeepseekV3Architecture(),
            new GptOssArchitecture())) {
      architecture.modelTypes().forEach(type -> BY_MODEL_TYPE.put(type, architecture));
    }
  }

  private Architectures() {}

  public static List<String> supportedModelTypes() {
    return List.copyOf(BY_MODEL_TYPE.keySet());
  }

  public static Architecture forConfig(ModelConfig config) {
    String modelType = config.modelType();
    Architecture architecture = BY_MODEL_TYPE.get(modelType);
    ValidationException.check(
        architecture != null,
        "Unsupported model_type '%s' in %s; sparkprune supports %s",
        modelType,
        config.location(),
        supportedModelTypes());
    return architecture;
  }

  public static ModelLayout layout(ModelArchive archive) {
    return layout(archive.config(), archive.tensorInfos(), archive.location());
  }

  /**
   * Resolves the layout, picking the name prefix under which the archive stores the decoder. The
   * forward checks run first, so a config the forward pass cannot compute is refused here, on
   * the driver, before anything per-block is built.
   */
  public static ModelLayout layout(ModelConfig config, Map<String, TensorInfo> tensors, String archiveLocation) {
    Architecture architecture = forConfig(config);
    ModelConfig decoder = architecture.decoderConfig(config);
    ForwardChecks.checkSettings(architecture, config.modelType(), decoder);
    String prefix = architecture.namePrefixes().get(0);
    for (String candidate : architecture.namePrefixes()) {
      String firstBlock = architecture.blocksPrefix(candidate) + "0.";
      if (tensors.keySet().stream().anyMatch(name -> name.startsWith(firstBlock))) {
        prefix = candidate;
        break;
      }
    }
    ForwardChecks.checkBlockCount(architecture, decoder, tensors.keySet(), architecture.blocksPrefix(prefix), archiveLocation);
    return ModelLayout.resolve(architecture.blueprint(config, prefix), tensors, archiveLocation);
  }

  /** The decoder's part of a config: Gemma-3's text_config for multimodal checkpoints, else the config. */
  public static ModelConfig decoderConfig(ModelConfig config) {
    return forConfig(config).decoderConfig(config);
  }

  /** The blueprint under the canonical prefix, for writing new archives of this architecture. */
  public static Blueprint canonicalBlueprint(ModelConfig config) {
    Architecture architecture = forConfig(config);
    return architecture.blueprint(config, architecture.namePrefixes().get(0));
  }
}
