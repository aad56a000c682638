package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;

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
        return new LlamaModel(weights, linalg);
      case "gpt2":
        return new Gpt2Model(weights, linalg);
      case "opt":
        return new OptModel(weights, linalg);
      case "gpt_neox":
        return new GptNeoxModel(weights, linalg);
      default:
        throw new ValidationException("Cannot run model_type '" + layout.modelType() + "'");
    }
  }
}
