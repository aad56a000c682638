package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * GPT-NeoX (Pythia): parallel residual, partial rotary, and one fused query_key_value linear whose
 * rows interleave q, k and v per head; it is pruned as one matrix, as the references do.
 */
final class GptNeoxArchitecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("gpt_neox");
  }

  @Override
  public List<String> namePrefixes() {
    return List.of("gpt_neox.");
  }

  @Override
  public Map<String, Set<String>> activations() {
    return Map.of("hidden_act", Set.of("gelu"));
  }

  @Override
  public Blueprint blueprint(ModelConfig config, String prefix) {
    int hidden = config.requireInt("hidden_size");
    int layers = config.requireInt("num_hidden_layers");
    config.requireInt("num_attention_heads");
    int intermediate = config.requireInt("intermediate_size");
    int vocab = config.requireInt("vocab_size");
    boolean attentionBias = config.booleanValue("attention_bias", true);

    Blueprint.Builder blueprint = Blueprint.builder("gpt_neox", layers);
    blueprint.tensor(prefix + "embed_in.weight", TensorRole.EMBEDDING, vocab, hidden);
    for (int b = 0; b < layers; b++) {
      String block = prefix + "layers." + b + ".";
      blueprint.norm(block + "input_layernorm", hidden, true);
      blueprint.norm(block + "post_attention_layernorm", hidden, true);
      blueprint.linear(b, block, "attention.query_key_value", 3L * hidden, hidden, false, "attention_input", attentionBias);
      blueprint.linear(b, block, "attention.dense", hidden, hidden, false, "attention_output", attentionBias);
      blueprint.linear(b, block, "mlp.dense_h_to_4h", intermediate, hidden, false, "mlp_input", true);
      blueprint.linear(b, block, "mlp.dense_4h_to_h", hidden, intermediate, false, "mlp_hidden", true);
    }
    blueprint.norm(prefix + "final_layer_norm", hidden, true);
    LlamaArchitecture.addHead(blueprint, config, "embed_out.weight", vocab, hidden, false);
    return blueprint.build();
  }
}
