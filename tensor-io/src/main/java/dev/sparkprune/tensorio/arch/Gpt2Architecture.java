package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * GPT-2: LayerNorm, learned positions, fused c_attn. Its {@code Conv1D} weights are stored
 * [in, out], the transpose of {@code nn.Linear}; the layout reports them in [out, in] terms.
 */
final class Gpt2Architecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("gpt2");
  }

  @Override
  public List<String> namePrefixes() {
    return List.of("transformer.", "");
  }

  @Override
  public String blocksPrefix(String namePrefix) {
    return namePrefix + "h.";
  }

  @Override
  public List<String> blockCountKeys() {
    return List.of("n_layer", "num_hidden_layers");
  }

  @Override
  public Map<String, Set<String>> activations() {
    // Gpt2Model runs exact GELU for "gelu" and the tanh form (gelu_new) otherwise.
    return Map.of("activation_function", Set.of("gelu_new", "gelu_pytorch_tanh", "gelu"));
  }

  @Override
  public boolean rotary() {
    return false;
  }

  @Override
  public Blueprint blueprint(ModelConfig config, String prefix) {
    int hidden = config.requireInt("n_embd", "hidden_size");
    int layers = config.requireInt("n_layer", "num_hidden_layers");
    config.requireInt("n_head", "num_attention_heads");
    int inner = config.optionalInt("n_inner").orElse(4 * hidden);
    int vocab = config.requireInt("vocab_size");
    int positions = config.requireInt("n_positions", "max_position_embeddings");

    Blueprint.Builder blueprint = Blueprint.builder("gpt2", layers);
    blueprint.tensor(prefix + "wte.weight", TensorRole.EMBEDDING, vocab, hidden);
    blueprint.tensor(prefix + "wpe.weight", TensorRole.POSITION_EMBEDDING, positions, hidden);
    for (int b = 0; b < layers; b++) {
      String block = prefix + "h." + b + ".";
      blueprint.norm(block + "ln_1", hidden, true);
      blueprint.linear(b, block, "attn.c_attn", 3L * hidden, hidden, true, "attention_input", true);
      blueprint.linear(b, block, "attn.c_proj", hidden, hidden, true, "attention_output", true);
      blueprint.norm(block + "ln_2", hidden, true);
      blueprint.linear(b, block, "mlp.c_fc", inner, hidden, true, "mlp_input", true);
      blueprint.linear(b, block, "mlp.c_proj", hidden, inner, true, "mlp_hidden", true);
    }
    blueprint.norm(prefix + "ln_f", hidden, true);
    LlamaArchitecture.addHead(blueprint, config, "lm_head.weight", vocab, hidden, true);
    return blueprint.build();
  }
}
