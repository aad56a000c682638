package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.IOException;
import java.util.List;

/**
 * GPT-2 as Hugging Face's GPT2Model: learned positions, pre-LayerNorm blocks, fused c_attn split
 * into q | k | v, gelu_new MLP, final ln_f and a head tied to wte. Conv1D weights arrive in
 * [out, in] orientation from {@link ArchiveWeights}.
 */
final class Gpt2Model extends BaseDecoderModel {
  final int hidden;
  final int heads;
  final double eps;
  final String prefix;
  final boolean exactGelu;

  Gpt2Model(ArchiveWeights weights, LinearAlgebra linalg) {
    super(weights, linalg, config(weights).requireInt("vocab_size"), Models.maxPositions(config(weights), weights.layout().modelType()));
    ModelConfig config = config(weights);
    this.hidden = config.requireInt("n_embd", "hidden_size");
    this.heads = config.requireInt("n_head", "num_attention_heads");
    this.eps = config.doubleValue("layer_norm_epsilon", 1e-5);
    this.exactGelu = config.stringValue("activation_function").map("gelu"::equals).orElse(false);
    String first = layout.blocks().get(0).linears().get(0).tensorName();
    this.prefix = first.substring(0, first.indexOf("h.0."));
  }

  @Override
  public HiddenStates embed(int[][] tokens) throws IOException {
    float[] values = lookup(tokens, weights.cached(prefix + "wte.weight"), hidden);
    Embeddings.addPositions(values, tokens.length, tokens[0].length, hidden, weights.cached(prefix + "wpe.weight"), 0);
    return new HiddenStates(tokens.length, tokens[0].length, hidden, values);
  }

  @Override
  public BlockWeights loadBlock(int block) throws IOException {
    return Embeddings.loadBlock(weights, block, prefix + "h." + block + ".");
  }

  @Override
  public HiddenStates runBlock(BlockWeights w, HiddenStates input, InputHook hook) {
    int tokens = input.tokens();
    String block = prefix + "h." + w.block() + ".";
    List<Linear> linears = layout.blocks().get(w.block()).linears();
    Linear cAttn = linears.get(0);
    Linear attnProj = linears.get(1);
    Linear cFc = linears.get(2);
    Linear mlpProj = linears.get(3);
    float[] h = input.values().clone();

    float[] x = Layers.layerNorm(h, tokens, hidden, w.tensor(block + "ln_1.weight"), w.tensor(block + "ln_1.bias"), eps);
    hook.accept(List.of(cAttn), x, tokens, input.sequences());
    float[] qkv = Fused.apply(linalg, w, cAttn, x, tokens);
    float[][] split = Fused.splitColumns(qkv, tokens, hidden, 3);
    float[] attention = Layers.causalAttention(linalg, split[0], split[1], split[2], input.sequences(), input.length(), heads, heads, hidden / heads);
    hook.accept(List.of(attnProj), attention, tokens, input.sequences());
    Layers.addInPlace(h, Fused.apply(linalg, w, attnProj, attention, tokens));

    x = Layers.layerNorm(h, tokens, hidden, w.tensor(block + "ln_2.weight"), w.tensor(block + "ln_2.bias"), eps);
    hook.accept(List.of(cFc), x, tokens, input.sequences());
    float[] inner = Fused.apply(linalg, w, cFc, x, tokens);
    for (int i = 0; i < inner.length; i++) {
      inner[i] = exactGelu ? Layers.geluErf(inner[i]) : Layers.geluTanh(inner[i]);
    }
    hook.accept(List.of(mlpProj), inner, tokens, input.sequences());
    Layers.addInPlace(h, Fused.apply(linalg, w, mlpProj, inner, tokens));
    return new HiddenStates(input.sequences(), input.length(), hidden, h);
  }

  @Override
  public float[] logits(HiddenStates hiddenStates, int sequence) throws IOException {
    HiddenStates one = hiddenStates.slice(sequence, 1);
    float[] x = Layers.layerNorm(one.values(), one.tokens(), hidden, weights.cached(prefix + "ln_f.weight"), weights.cached(prefix + "ln_f.bias"), eps);
    float[] head = weights.cached(weights.contains("lm_head.weight") ? "lm_head.weight" : prefix + "wte.weight");
    return Layers.linear(linalg, x, one.tokens(), hidden, head, vocabSize(), null);
  }
}
