package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.List;

/**
 * DeepSeek-V3/V3.1/R1, Kimi-K2 and Moonlight (transformers' DeepseekV3ForCausalLM): multi-head
 * latent attention ({@link DeepseekConfig}), dense SwiGLU MLPs before first_k_dense_replace,
 * then sigmoid group-limited MoE blocks with shared experts ({@link MixtureOfExperts}), and
 * num_nextn_predict_layers multi-token-prediction layers after the blocks.
 */
final class DeepseekV3Architecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("deepseek_v3", "kimi_k2");
  }

  @Override
  public List<String> namePrefixes() {
    return List.of("model.");
  }

  @Override
  public int mtpBlocks(ModelConfig decoder) {
    return decoder.nonNegativeInt("num_nextn_predict_layers", 0);
  }

  @Override
  public Blueprint blueprint(ModelConfig config, String prefix) {
    DeepseekConfig mla = DeepseekConfig.resolve(config);
    MixtureOfExperts moe = MixtureOfExperts.of(config).orElseThrow();
    int hidden = mla.hidden();
    Blueprint.Builder blueprint = Blueprint.builder(config.modelType(), mla.layers());
    blueprint.tensor(prefix + "embed_tokens.weight", TensorRole.EMBEDDING, mla.vocab(), hidden);
    for (int b = 0; b < mla.layers(); b++) {
      addLayer(blueprint, b, prefix + "layers." + b + ".", mla, moe);
    }
    for (int b = mla.layers(); b < mla.layers() + mla.mtpLayers(); b++) {
      int mtpBlock = b;
      blueprint.tensorsOf(mtpLayer(config.modelType(), prefix + "layers." + b + ".", mla.vocab(), hidden, (layer, block) ->
          addLayer(layer, mtpBlock, block, mla, moe)), TensorRole.MTP);
    }
    blueprint.norm(prefix + "norm", hidden, false);
    LlamaArchitecture.addHead(blueprint, config, "lm_head.weight", mla.vocab(), hidden, false);
    return blueprint.build();
  }

  private static void addLayer(Blueprint.Builder blueprint, int b, String block, DeepseekConfig mla, MixtureOfExperts moe) {
    int hidden = mla.hidden();
    long qWidth = (long) mla.heads() * mla.qkHeadDim();
    boolean bias = mla.attentionBias();
    blueprint.norm(block + "input_layernorm", hidden, false);
    // In forward order: the two projections of the normed input, then the two from the latents.
    if (mla.hasQueryLora()) {
      blueprint.linear(b, block, "self_attn.q_a_proj", mla.qLoraRank(), hidden, false, "attention_input", bias);
    } else {
      blueprint.linear(b, block, "self_attn.q_proj", qWidth, hidden, false, "attention_input", false);
    }
    blueprint.linear(b, block, "self_attn.kv_a_proj_with_mqa", mla.kvLoraRank() + mla.qkRopeDim(), hidden, false, "attention_input", bias);
    if (mla.hasQueryLora()) {
      blueprint.norm(block + "self_attn.q_a_layernorm", mla.qLoraRank(), false);
      blueprint.linear(b, block, "self_attn.q_b_proj", qWidth, mla.qLoraRank(), false, "query_latent", false);
    }
    blueprint.norm(block + "self_attn.kv_a_layernorm", mla.kvLoraRank(), false);
    blueprint.linear(
        b, block, "self_attn.kv_b_proj", (long) mla.heads() * (mla.qkNopeDim() + mla.vHeadDim()), mla.kvLoraRank(), false, "kv_latent", false);
    blueprint.linear(b, block, "self_attn.o_proj", hidden, (long) mla.heads() * mla.vHeadDim(), false, "attention_output", bias);
    blueprint.norm(block + "post_attention_layernorm", hidden, false);
    if (moe.isSparse(b)) {
      moe.addTo(blueprint, b, block, hidden);
    } else {
      LlamaArchitecture.addDenseMlp(blueprint, b, block, mla.intermediate(), hidden, false);
    }
  }

  /** How an architecture lays out one decoder layer's tensors under a block prefix. */
  @FunctionalInterface
  interface LayerTensors {
    void add(Blueprint.Builder layer, String blockPrefix);
  }

  /**
   * One multi-token-prediction layer (DeepSeek-V3's and GLM-4.5's): a decoder layer plus the
   * norms of the next token's embedding and of the hidden state ({@code enorm}, {@code hnorm}),
   * their projection {@code eh_proj} [hidden, 2 x hidden] and the output norm; releases also
   * store a copy of the embedding and of the head, which transformers and vLLM share otherwise.
   */
  static Blueprint mtpLayer(String modelType, String block, int vocab, int hidden, LayerTensors layer) {
    Blueprint.Builder mtp = Blueprint.builder(modelType, 0);
    mtp.optionalTensor(block + "embed_tokens.weight", TensorRole.MTP, vocab, hidden);
    mtp.norm(block + "enorm", hidden, false);
    mtp.norm(block + "hnorm", hidden, false);
    mtp.tensor(block + "eh_proj.weight", TensorRole.MTP, hidden, 2L * hidden);
    layer.add(mtp, block);
    mtp.norm(block + "shared_head.norm", hidden, false);
    mtp.optionalTensor(block + "shared_head.head.weight", TensorRole.MTP, vocab, hidden);
    return mtp.build();
  }
}
