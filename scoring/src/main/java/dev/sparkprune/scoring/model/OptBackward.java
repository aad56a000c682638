package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.Linear;
import java.io.IOException;
import java.util.List;

/** {@link OptModel}'s block and head as tape ops: pre- or post-LayerNorm, ReLU MLP, optional project_out. */
final class OptBackward extends TapeBackward {
  private static final double EPS = 1e-5;
  private final OptModel m;

  OptBackward(OptModel model) {
    super(model);
    this.m = model;
  }

  @Override
  float[] block(Tape t, BlockWeights w, HiddenStates input) {
    int tokens = input.tokens();
    String block = m.prefix + "layers." + w.block() + ".";
    List<Linear> linears = m.layout().blocks().get(w.block()).linears();
    float[] h = input.values();

    float[] x = m.normBefore ? norm(t, w, block + "self_attn_layer_norm", h, tokens) : h;
    float[] q = t.linear(w, linears.get(0), x, tokens);
    float[] k = t.linear(w, linears.get(1), x, tokens);
    float[] v = t.linear(w, linears.get(2), x, tokens);
    int headDim = m.hidden / m.heads;
    float[] attention = t.attention(q, k, v, input.sequences(), input.length(), m.heads, m.heads, headDim, AttentionShape.causal(headDim));
    h = t.add(h, t.linear(w, linears.get(3), attention, tokens));
    if (!m.normBefore) {
      h = norm(t, w, block + "self_attn_layer_norm", h, tokens);
    }

    x = m.normBefore ? norm(t, w, block + "final_layer_norm", h, tokens) : h;
    float[] inner = t.activate(t.linear(w, linears.get(4), x, tokens), Tape.Activation.RELU);
    h = t.add(h, t.linear(w, linears.get(5), inner, tokens));
    return m.normBefore ? h : norm(t, w, block + "final_layer_norm", h, tokens);
  }

  private float[] norm(Tape t, BlockWeights w, String name, float[] h, int tokens) {
    return t.layerNorm(h, tokens, m.hidden, w.tensor(name + ".weight"), w.tensor(name + ".bias"), EPS);
  }

  @Override
  float[] logits(Tape t, float[] hidden, int length) throws IOException {
    float[] x = hidden;
    if (m.weights.contains(m.prefix + "final_layer_norm.weight")) {
      x = t.layerNorm(x, length, m.hidden, m.weights.cached(m.prefix + "final_layer_norm.weight"), m.weights.cached(m.prefix + "final_layer_norm.bias"), EPS);
    }
    if (m.embedWidth != m.hidden) {
      x = t.matmul(x, length, m.hidden, m.weights.cached(m.prefix + "project_out.weight"), m.embedWidth, null);
    }
    return t.matmul(x, length, m.embedWidth, head(m.prefix + "embed_tokens.weight"), m.vocabSize(), null);
  }
}
