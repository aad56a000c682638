package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.Linear;
import java.io.IOException;
import java.util.List;

/** {@link Gpt2Model}'s block and head as tape ops (Conv1D weights in [out, in] as the forward uses them). */
final class Gpt2Backward extends TapeBackward {
  private final Gpt2Model m;

  Gpt2Backward(Gpt2Model model) {
    super(model);
    this.m = model;
  }

  @Override
  float[] block(Tape t, BlockWeights w, HiddenStates input) {
    int tokens = input.tokens();
    int hidden = m.hidden;
    String block = m.prefix + "h." + w.block() + ".";
    List<Linear> linears = m.layout().blocks().get(w.block()).linears();
    float[] h = input.values();

    float[] x = t.layerNorm(h, tokens, hidden, w.tensor(block + "ln_1.weight"), w.tensor(block + "ln_1.bias"), m.eps);
    float[][] qkv = t.splitWidths(t.linear(w, linears.get(0), x, tokens), tokens, hidden, hidden, hidden);
    float[] attention = t.attention(
        qkv[0], qkv[1], qkv[2], input.sequences(), input.length(), m.heads, m.heads, hidden / m.heads, AttentionShape.causal(hidden / m.heads));
    h = t.add(h, t.linear(w, linears.get(1), attention, tokens));

    x = t.layerNorm(h, tokens, hidden, w.tensor(block + "ln_2.weight"), w.tensor(block + "ln_2.bias"), m.eps);
    float[] inner = t.activate(t.linear(w, linears.get(2), x, tokens), m.exactGelu ? Tape.Activation.GELU_ERF : Tape.Activation.GELU_TANH);
    return t.add(h, t.linear(w, linears.get(3), inner, tokens));
  }

  @Override
  float[] logits(Tape t, float[] hidden, int length) throws IOException {
    float[] x = t.layerNorm(hidden, length, m.hidden, m.weights.cached(m.prefix + "ln_f.weight"), m.weights.cached(m.prefix + "ln_f.bias"), m.eps);
    return t.matmul(x, length, m.hidden, head(m.prefix + "wte.weight"), m.vocabSize(), null);
  }
}
