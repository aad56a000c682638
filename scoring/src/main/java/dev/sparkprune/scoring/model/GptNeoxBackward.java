package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.Linear;
import java.io.IOException;
import java.util.List;

/** {@link GptNeoxModel}'s block and head as tape ops: per-head fused qkv, partial rotary, parallel or sequential residual. */
final class GptNeoxBackward extends TapeBackward {
  private final GptNeoxModel m;

  GptNeoxBackward(GptNeoxModel model) {
    super(model);
    this.m = model;
  }

  @Override
  float[] block(Tape t, BlockWeights w, HiddenStates input) {
    int tokens = input.tokens();
    int sequences = input.sequences();
    String block = "gpt_neox.layers." + w.block() + ".";
    List<Linear> linears = m.layout().blocks().get(w.block()).linears();
    float[] h = input.values();

    float[] x = norm(t, w, block + "input_layernorm", h, tokens);
    float[][] qkv = t.splitPerHead(t.linear(w, linears.get(0), x, tokens), tokens, m.heads, m.headDim);
    float[] q = t.rope(m.rope, qkv[0], sequences, input.length(), m.heads);
    float[] k = t.rope(m.rope, qkv[1], sequences, input.length(), m.heads);
    float[] attention = t.attention(q, k, qkv[2], sequences, input.length(), m.heads, m.heads, m.headDim, AttentionShape.causal(m.headDim));
    float[] out = t.add(h, t.linear(w, linears.get(1), attention, tokens));
    float[] mlpInput = norm(t, w, block + "post_attention_layernorm", m.parallelResidual ? h : out, tokens);
    float[] inner = t.activate(t.linear(w, linears.get(2), mlpInput, tokens), Tape.Activation.GELU_ERF);
    return t.add(out, t.linear(w, linears.get(3), inner, tokens));
  }

  private float[] norm(Tape t, BlockWeights w, String name, float[] h, int tokens) {
    return t.layerNorm(h, tokens, m.hidden, w.tensor(name + ".weight"), w.tensor(name + ".bias"), m.eps);
  }

  @Override
  float[] logits(Tape t, float[] hidden, int length) throws IOException {
    float[] x = t.layerNorm(
        hidden, length, m.hidden, m.weights.cached("gpt_neox.final_layer_norm.weight"), m.weights.cached("gpt_neox.final_layer_norm.bias"), m.eps);
    float[] head = m.weights.cached(m.weights.contains("embed_out.weight") ? "embed_out.weight" : "gpt_neox.embed_in.weight");
    return t.matmul(x, length, m.hidden, head, m.vocabSize(), null);
  }
}
