package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;

/**
 * Phi-3 (and Phi-4-mini): RMSNorm, grouped-query attention with one fused {@code qkv_proj}
 * whose rows are [q; k; v], and one fused {@code gate_up_proj} whose rows are [gate; up]. Each
 * fused linear is one prunable matrix, as the references prune them.
 */
final class Phi3Architecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("phi3");
  }

  @Override
  public List<String> namePrefixes() {
    return List.of("model.");
  }

  @Override
  public Blueprint blueprint(ModelConfig config, String prefix) {
    DecoderShape shape = DecoderShape.of(config);
    // Phi3Config defaults original_max_position_embeddings to 4096 where longrope reads it; a
    // checkpoint without the key is refused rather than run on a guessed value.
    ValidationException.check(
        !ForwardChecks.ropeScalingType(config).equals("longrope") || config.optionalInt("original_max_position_embeddings").isPresent(),
        "Cannot run model_type phi3: longrope rope_scaling in %s needs original_max_position_embeddings; add the pretrained context length",
        config.location());
    int hidden = shape.hidden();
    int layers = shape.layers();
    int intermediate = shape.intermediate();
    int vocab = shape.vocab();
    long qWidth = (long) shape.heads() * shape.headDim();
    long qkvRows = qWidth + 2L * shape.kvHeads() * shape.headDim();

    Blueprint.Builder blueprint = Blueprint.builder("phi3", layers);
    blueprint.tensor(prefix + "embed_tokens.weight", TensorRole.EMBEDDING, vocab, hidden);
    for (int b = 0; b < layers; b++) {
      String block = prefix + "layers." + b + ".";
      blueprint.norm(block + "input_layernorm", hidden, false);
      blueprint.linear(b, block, "self_attn.qkv_proj", qkvRows, hidden, false, "attention_input", false);
      blueprint.linear(b, block, "self_attn.o_proj", hidden, qWidth, false, "attention_output", false);
      blueprint.norm(block + "post_attention_layernorm", hidden, false);
      blueprint.linear(b, block, "mlp.gate_up_proj", 2L * intermediate, hidden, false, "mlp_input", false);
      blueprint.linear(b, block, "mlp.down_proj", hidden, intermediate, false, "mlp_hidden", false);
    }
    blueprint.norm(prefix + "norm", hidden, false);
    LlamaArchitecture.addHead(blueprint, config, "lm_head.weight", vocab, hidden, false);
    return blueprint.build();
  }
}
