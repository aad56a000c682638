package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.IOException;
import java.util.List;

/**
 * OPT as Hugging Face's OPTDecoder: learned positions offset by 2, LayerNorm before (or, for
 * OPT-350m, after) attention and MLP, ReLU MLP, optional project_in/project_out around the
 * decoder when word_embed_proj_dim differs from hidden_size, head tied to the embedding.
 */
final class OptModel extends BaseDecoderModel {
  private static final int POSITION_OFFSET = 2;

  final int hidden;
  final int embedWidth;
  final int heads;
  final boolean normBefore;
  final String prefix;

  OptModel(ArchiveWeights weights, LinearAlgebra linalg) {
    super(weights, linalg, config(weights).requireInt("vocab_size"), Models.maxPositions(config(weights), weights.layout().modelType()));
    ModelConfig config = config(weights);
    this.hidden = config.requireInt("hidden_size");
    this.embedWidth = config.optionalInt("word_embed_proj_dim").orElse(hidden);
    this.heads = config.requireInt("num_attention_heads");
    this.normBefore = config.booleanValue("do_layer_norm_before", true);
    String first = layout.blocks().get(0).linears().get(0).tensorName();
    this.prefix = first.substring(0, first.indexOf("layers.0."));
  }

  @Override
  public HiddenStates embed(int[][] tokens) throws IOException {
    int length = tokens[0].length;
    float[] embedded = lookup(tokens, weights.cached(prefix + "embed_tokens.weight"), embedWidth);
    float[] values = embedWidth == hidden
        ? embedded
        : Layers.linear(linalg, embedded, tokens.length * length, embedWidth, weights.cached(prefix + "project_in.weight"), hidden, null);
    Embeddings.addPositions(values, tokens.length, length, hidden, weights.cached(prefix + "embed_positions.weight"), POSITION_OFFSET);
    return new HiddenStates(tokens.length, length, hidden, values);
  }

  @Override
  public BlockWeights loadBlock(int block) throws IOException {
    return Embeddings.loadBlock(weights, block, prefix + "layers." + block + ".");
  }

  @Override
  public HiddenStates runBlock(BlockWeights w, HiddenStates input, InputHook hook) {
    int tokens = input.tokens();
    String block = prefix + "layers." + w.block() + ".";
    List<Linear> linears = layout.blocks().get(w.block()).linears();
    float[] h = input.values().clone();

    float[] x = normBefore ? norm(w, block + "self_attn_layer_norm", h, tokens) : h;
    hook.accept(linears.subList(0, 3), x, tokens, input.sequences());
    float[] q = Fused.apply(linalg, w, linears.get(0), x, tokens);
    float[] k = Fused.apply(linalg, w, linears.get(1), x, tokens);
    float[] v = Fused.apply(linalg, w, linears.get(2), x, tokens);
    float[] attention = Layers.causalAttention(linalg, q, k, v, input.sequences(), input.length(), heads, heads, hidden / heads);
    hook.accept(List.of(linears.get(3)), attention, tokens, input.sequences());
    Layers.addInPlace(h, Fused.apply(linalg, w, linears.get(3), attention, tokens));
    if (!normBefore) {
      h = norm(w, block + "self_attn_layer_norm", h, tokens);
    }

    x = normBefore ? norm(w, block + "final_layer_norm", h, tokens) : h;
    hook.accept(List.of(linears.get(4)), x, tokens, input.sequences());
    float[] inner = Fused.apply(linalg, w, linears.get(4), x, tokens);
    for (int i = 0; i < inner.length; i++) {
      inner[i] = Math.max(0f, inner[i]);
    }
    hook.accept(List.of(linears.get(5)), inner, tokens, input.sequences());
    Layers.addInPlace(h, Fused.apply(linalg, w, linears.get(5), inner, tokens));
    if (!normBefore) {
      h = norm(w, block + "final_layer_norm", h, tokens);
    }
    return new HiddenStates(input.sequences(), input.length(), hidden, h);
  }

  private float[] norm(BlockWeights w, String name, float[] h, int tokens) {
    return Layers.layerNorm(h, tokens, hidden, w.tensor(name + ".weight"), w.tensor(name + ".bias"), 1e-5);
  }

  @Override
  public float[] logits(HiddenStates hiddenStates, int sequence) throws IOException {
    HiddenStates one = hiddenStates.slice(sequence, 1);
    float[] x = one.values();
    if (weights.contains(prefix + "final_layer_norm.weight")) {
      x = Layers.layerNorm(x, one.tokens(), hidden, weights.cached(prefix + "final_layer_norm.weight"), weights.cached(prefix + "final_layer_norm.bias"), 1e-5);
    }
    if (embedWidth != hidden) {
      x = Layers.linear(linalg, x, one.tokens(), hidden, weights.cached(prefix + "project_out.weight"), embedWidth, null);
    }
    float[] head = weights.cached(weights.contains("lm_head.weight") ? "lm_head.weight" : prefix + "embed_tokens.weight");
    return Layers.linear(linalg, x, one.tokens(), embedWidth, head, vocabSize(), null);
  }
}
