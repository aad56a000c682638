package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Gemma-2 and Gemma-3 (text): Llama-shaped linears with four norms per block (input,
 * post-attention, pre- and post-feedforward); Gemma-3 adds per-head q/k norms. Multimodal
 * {@code gemma3} checkpoints keep the decoder under {@code language_model.model.} (or
 * {@code model.language_model.} in newer exports) with its settings in {@code text_config};
 * their vision tower is listed as other tensors and copied unchanged.
 */
final class GemmaArchitecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("gemma2", "gemma3_text", "gemma3");
  }

  @Override
  public List<String> namePrefixes() {
    return List.of("model.", "language_model.model.", "model.language_model.");
  }

  @Override
  public ModelConfig decoderConfig(ModelConfig config) {
    return GemmaConfig.decoderConfig(config);
  }

  @Override
  public Map<String, Set<String>> activations() {
    // Gemma reads hidden_activation only (a hidden_act beside it is ignored, as in Hugging Face).
    return Map.of("hidden_activation", Set.of("gelu_pytorch_tanh", "gelu_new"));
  }

  @Override
  public Blueprint blueprint(ModelConfig config, String prefix) {
    GemmaConfig gemma = GemmaConfig.resolve(config);
    int hidden = gemma.hidden();
    long qWidth = (long) gemma.heads() * gemma.headDim();
    long kvWidth = (long) gemma.kvHeads() * gemma.headDim();
    boolean bias = gemma.attentionBias();
    Blueprint.Builder blueprint = Blueprint.builder(config.modelType(), gemma.layers());
    blueprint.tensor(prefix + "embed_tokens.weight", TensorRole.EMBEDDING, gemma.vocab(), hidden);
    for (int b = 0; b < gemma.layers(); b++) {
      String block = prefix + "layers." + b + ".";
      blueprint.norm(block + "input_layernorm", hidden, false);
      blueprint.linear(b, block, "self_attn.q_proj", qWidth, hidden, false, "attention_input", bias);
      blueprint.linear(b, block, "self_attn.k_proj", kvWidth, hidden, false, "attention_input", bias);
      blueprint.linear(b, block, "self_attn.v_proj", kvWidth, hidden, false, "attention_input", bias);
      if (gemma.gemma3()) {
        blueprint.norm(block + "self_attn.q_norm", gemma.headDim(), false);
        blueprint.norm(block + "self_attn.k_norm", gemma.headDim(), false);
      }
      blueprint.linear(b, block, "self_attn.o_proj", hidden, qWidth, false, "attention_output", bias);
      blueprint.norm(block + "post_attention_layernorm", hidden, false);
      blueprint.norm(block + "pre_feedforward_layernorm", hidden, false);
      blueprint.linear(b, block, "mlp.gate_proj", gemma.intermediate(), hidden, false, "mlp_input", false);
      blueprint.linear(b, block, "mlp.up_proj", gemma.intermediate(), hidden, false, "mlp_input", false);
      blueprint.linear(b, block, "mlp.down_proj", hidden, gemma.intermediate(), false, "mlp_hidden", false);
      blueprint.norm(block + "post_feedforward_layernorm", hidden, false);
    }
    blueprint.norm(prefix + "norm", hidden, false);
    LlamaArchitecture.addHead(blueprint, gemma.decoder(), "lm_head.weight", gemma.vocab(), hidden, true);
    return blueprint.build();
  }
}
