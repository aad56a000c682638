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
    int hidden = config.requireInt("hidden_size");
    int layers = config.requireInt("num_hidden_layers");
    int heads = config.requireInt("num_attention_heads");
    int kvHeads = config.optionalInt("num_key_value_heads").orElse(heads);
    ValidationException.check(
        heads % kvHeads == 0,
        "Invalid model config %s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
        config.location(),
        heads,
        kvHeads);
    int headDim = config.optionalInt("head_dim").orElse(hidden / heads);
    int intermediate = config.requireInt("intermediate_size");
    int vocab = config.requireInt("vocab_size");
    long qkvRows = (long) (heads + 2 * kvHeads) * headDim;

    Blueprint.Builder blueprint = Blueprint.builder("phi3", layers);
    blueprint.tensor(prefix + "embed_tokens.weight", TensorRole.EMBEDDING, vocab, hidden);
    for (int b = 0; b < layers; b++) {
      String block = prefix + "layers." + b + ".";
      blueprint.norm(block + "input_layernorm", hidden, false);
      blueprint.linear(b, block, "self_attn.qkv_proj", qkvRows, hidden, false, "attention_input", false);
      blueprint.linear(b, block, "self_attn.o_proj", hidden, (long) heads * headDim, false, "attention_output", false);
      blueprint.norm(block + "post_attention_layernorm", hidden, false);
      blueprint.linear(b, block, "mlp.gate_up_proj", 2L * intermediate, hidden, false, "mlp_input", false);
      blueprint.linear(b, block, "mlp.down_proj", hidden, intermediate, false, "mlp_hidden", false);
    }
    blueprint.norm(prefix + "norm", hidden, false);
    LlamaArchitecture.addHead(blueprint, config, "lm_head.weight", vocab, hidden, false);
    return blueprint.build();
  }
}
