package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * OPT: LayerNorm before or after attention, ReLU MLP, learned positions offset by 2, and for
 * OPT-350m an embedding width that differs from the hidden size (project_in/project_out).
 */
final class OptArchitecture implements Architecture {
  /** OPT's learned positional embedding reserves two leading rows. */
  public static final int POSITION_OFFSET = 2;

  @Override
  public List<String> modelTypes() {
    return List.of("opt");
  }

  @Override
  public List<String> namePrefixes() {
    return List.of("model.decoder.", "decoder.");
  }

  @Override
  public Map<String, Set<String>> activations() {
    return Map.of("activation_function", Set.of("relu"));
  }

  @Override
  public boolean rotary() {
    return false;
  }

  @Override
  public Blueprint blueprint(ModelConfig config, String prefix) {
    int hidden = config.requireInt("hidden_size");
    int layers = config.requireInt("num_hidden_layers");
    config.requireInt("num_attention_heads");
    int ffn = config.requireInt("ffn_dim");
    int vocab = config.requireInt("vocab_size");
    int positions = config.requireInt("max_position_embeddings");
    int embedWidth = config.optionalInt("word_embed_proj_dim").orElse(hidden);
    boolean bias = config.booleanValue("enable_bias", true);
    boolean finalNorm =
        config.booleanValue("do_layer_norm_before", true) && !config.booleanValue("_remove_final_layer_norm", false);

    Blueprint.Builder blueprint = Blueprint.builder("opt", layers);
    blueprint.tensor(prefix + "embed_tokens.weight", TensorRole.EMBEDDING, vocab, embedWidth);
    blueprint.tensor(prefix + "embed_positions.weight", TensorRole.POSITION_EMBEDDING, positions + POSITION_OFFSET, hidden);
    if (embedWidth != hidden) {
      blueprint.tensor(prefix + "project_in.weight", TensorRole.PROJECTION, hidden, embedWidth);
      blueprint.tensor(prefix + "project_out.weight", TensorRole.PROJECTION, embedWidth, hidden);
    }
    for (int b = 0; b < layers; b++) {
      String block = prefix + "layers." + b + ".";
      blueprint.linear(b, block, "self_attn.q_proj", hidden, hidden, false, "attention_input", bias);
      blueprint.linear(b, block, "self_attn.k_proj", hidden, hidden, false, "attention_input", bias);
      blueprint.linear(b, block, "self_attn.v_proj", hidden, hidden, false, "attention_input", bias);
      blueprint.linear(b, block, "self_attn.out_proj", hidden, hidden, false, "attention_output", bias);
      blueprint.norm(block + "self_attn_layer_norm", hidden, true);
      blueprint.linear(b, block, "fc1", ffn, hidden, false, "mlp_input", bias);
      blueprint.linear(b, block, "fc2", hidden, ffn, false, "mlp_hidden", bias);
      blueprint.norm(block + "final_layer_norm", hidden, true);
    }
    if (finalNorm) {
      blueprint.norm(prefix + "final_layer_norm", hidden, true);
    }
    LlamaArchitecture.addHead(blueprint, config, "lm_head.weight", vocab, embedWidth, true);
    return blueprint.build();
  }
}
