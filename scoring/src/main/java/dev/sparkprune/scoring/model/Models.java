package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.ModelConfig;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;

/** Opens the forward pass that matches an archive's {@code model_type}. */
public final class Models {
  private Models() {}

  public static DecoderModel open(ModelArchive archive, LinearAlgebra linalg) {
    ModelLayout layout = Architectures.layout(archive);
    ArchiveWeights weights = new ArchiveWeights(archive, layout);
    switch (layout.modelType()) {
      case "llama":
      case "mistral":
      case "qwen2":
      case "qwen3":
      case "mixtral":
      case "qwen2_moe":
      case "qwen3_moe":
      case "glm4_moe":
        return new LlamaModel(weights, linalg);
      case "deepseek_v3":
      case "kimi_k2":
        return new DeepseekV3Model(weights, linalg);
      case "gpt_oss":
        return new GptOssModel(weights, linalg);
      case "gpt2":
        return new Gpt2Model(weights, linalg);
      case "opt":
        return new OptModel(weights, linalg);
      case "gpt_neox":
        return new GptNeoxModel(weights, linalg);
      case "gemma2":
      case "gemma3_text":
      case "gemma3":
        return GemmaModel.open(weights, linalg);
      case "phi3":
        return new Phi3Model(weights, linalg);
      default:
        throw new ValidationException("Cannot run model_type '" + layout.modelType() + "'");
    }
  }

  /**
   * The longest sequence a model of this {@code model_type} accepts, from {@code config.json}
   * alone: what the driver checks {@code --seqlen} against before any weight is read.
   */
  public static int maxPositions(ModelConfig config, String modelType) {
    switch (modelType) {
      case "gpt2":
        return config.requireInt("n_positions", "max_position_embeddings");
      case "opt":
        return config.requireInt("max_position_embeddings");
      default:
        // Llama-family and GPT-NeoX configs may leave it out; their rotary tables then hold 2048.
        return config.optionalInt("max_position_embeddings").orElse(2048);
    }
  }

  /**
   * Checks that every id the tokenizer can produce has an embedding row: a tokenizer.json from
   * another model would otherwise fail inside a Spark task, or read the wrong rows.
   */
  public static void checkTokenizer(ModelArchive archive, Tokenizer tokenizer) {
    int rows = archive.config().requireInt("vocab_size");
    ValidationException.check(
        tokenizer.vocabSize() <= rows,
        "Invalid tokenizer %s/tokenizer.json: it has token ids up to %d, but the model has %d embedding rows (vocab_size in config.json);"
            + " use the tokenizer that came with the model",
        archive.location(),
        tokenizer.vocabSize() - 1,
        rows);
  }
}
