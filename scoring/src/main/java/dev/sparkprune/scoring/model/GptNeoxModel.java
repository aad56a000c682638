package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.IOException;
import java.util.List;

/**
 * GPT-NeoX (Pythia) as Hugging Face's GPTNeoXModel: fused query_key_value laid out per head,
 * partial rotary on the first rotary_pct of each head, exact GELU MLP, and the parallel residual
 * h + attn(ln1(h)) + mlp(ln2(h)) unless use_parallel_residual is false.
 */
final class GptNeoxModel extends BaseDecoderModel {
  final int hidden;
  final int heads;
  final int headDim;
  final double eps;
  final boolean parallelResidual;
  final Rope rope;

  GptNeoxModel(ArchiveWeights weights, LinearAlgebra linalg) {
    super(weights, linalg, config(weights).requireInt("vocab_size"), Models.maxPositions(config(weights), weights.layout().modelType()));
    ModelConfig config = config(weights);
    this.hidden = config.requireInt("hidden_size");
    this.heads = config.requireInt("num_attention_heads");
    this.headDim = hidden / heads;
    this.eps = config.doubleValue("layer_norm_eps", 1e-5);
    this.parallelResidual = config.booleanValue("use_parallel_residual", true);
    int rotaryDim = (int) (headDim * config.doubleValue("rotary_pct", 1.0));
    this.rope = new Rope(config, headDim, rotaryDim, maxPositions());
  }

  @Override
  public HiddenStates embed(int[][] tokens) throws IOException {
    float[] values = lookup(tokens, weights.cached("gpt_neox.embed_in.weight"), hidden);
    return new HiddenStates(tokens.length, tokens[0].length, hidden, values);
  }

  @Override
  public BlockWeights loadBlock(int block) throws IOException {
    return Embeddings.loadBlock(weights, block, "gpt_neox.layers." + block + ".");
  }

  @Override
  public HiddenStates runBlock(BlockWeights w, HiddenStates input, InputHook hook) {
    int tokens = input.tokens();
    String block = "gpt_neox.layers." + w.block() + ".";
    List<Linear> linears = layout.blocks().get(w.block()).linears();
    float[] h = input.values();

    float[] x = norm(w, block + "input_layernorm", h, tokens);
    hook.accept(List.of(linears.get(0)), x, tokens, input.sequences());
    float[][] qkv = Fused.splitPerHead(Fused.apply(linalg, w, linears.get(0), x, tokens), tokens, heads, headDim);
    rope.apply(qkv[0], input.sequences(), input.length(), heads);
    rope.apply(qkv[1], input.sequences(), input.length(), heads);
    float[] attention = Layers.causalAttention(linalg, qkv[0], qkv[1], qkv[2], input.sequences(), input.length(), heads, heads, headDim);
    hook.accept(List.of(linears.get(1)), attention, tokens, input.sequences());
    float[] attentionOut = Fused.apply(linalg, w, linears.get(1), attention, tokens);

    float[] out = h.clone();
    Layers.addInPlace(out, attentionOut);
    float[] mlpInput = norm(w, block + "post_attention_layernorm", parallelResidual ? h : out, tokens);
    hook.accept(List.of(linears.get(2)), mlpInput, tokens, input.sequences());
    float[] inner = Fused.apply(linalg, w, linears.get(2), mlpInput, tokens);
    for (int i = 0; i < inner.length; i++) {
      inner[i] = Layers.geluErf(inner[i]);
    }
    hook.accept(List.of(linears.get(3)), inner, tokens, input.sequences());
    Layers.addInPlace(out, Fused.apply(linalg, w, linears.get(3), inner, tokens));
    return new HiddenStates(input.sequences(), input.length(), hidden, out);
  }

  private float[] norm(BlockWeights w, String name, float[] h, int tokens) {
    return Layers.layerNorm(h, tokens, hidden, w.tensor(name + ".weight"), w.tensor(name + ".bias"), eps);
  }

  @Override
  public float[] logits(HiddenStates hiddenStates, int sequence) throws IOException {
    HiddenStates one = hiddenStates.slice(sequence, 1);
    float[] x = Layers.layerNorm(
        one.values(), one.tokens(), hidden, weights.cached("gpt_neox.final_layer_norm.weight"), weights.cached("gpt_neox.final_layer_norm.bias"), eps);
    float[] head = weights.cached(weights.contains("embed_out.weight") ? "embed_out.weight" : "gpt_neox.embed_in.weight");
    return Layers.linear(linalg, x, one.tokens(), hidden, head, vocabSize(), null);
  }
}
