package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.GemmaConfig;
import dev.sparkprune.tensorio.arch.Linear;
import java.io.IOException;
import java.util.List;

/** {@link GemmaModel}'s block and head as tape ops: Gemma-2 and Gemma-3 (text). */
final class GemmaBackward extends TapeBackward {
  private final GemmaModel m;

  GemmaBackward(GemmaModel model) {
    super(model);
    this.m = model;
  }

  @Override
  float[] block(Tape t, BlockWeights w, HiddenStates input) {
    GemmaConfig gemma = m.gemma;
    int tokens = input.tokens();
    int sequences = input.sequences();
    int hidden = gemma.hidden();
    String block = m.bodyPrefix + "layers." + w.block() + ".";
    List<Linear> linears = m.layout().blocks().get(w.block()).linears();
    float[] h = input.values();

    float[] x = norm(t, w, block + "input_layernorm", h, tokens, hidden);
    float[] q = t.linear(w, linears.get(0), x, tokens);
    float[] k = t.linear(w, linears.get(1), x, tokens);
    float[] v = t.linear(w, linears.get(2), x, tokens);
    if (gemma.gemma3()) {
      q = norm(t, w, block + "self_attn.q_norm", q, tokens * gemma.heads(), gemma.headDim());
      k = norm(t, w, block + "self_attn.k_norm", k, tokens * gemma.kvHeads(), gemma.headDim());
    }
    boolean sliding = gemma.sliding(w.block());
    Rope rope = sliding ? m.localRope : m.globalRope;
    q = t.rope(rope, q, sequences, input.length(), gemma.heads());
    k = t.rope(rope, k, sequences, input.length(), gemma.kvHeads());
    AttentionShape shape = new AttentionShape(
        (float) Math.pow(gemma.queryPreAttnScalar(), -0.5), gemma.attentionSoftcap(), sliding ? gemma.slidingWindow() : 0);
    float[] attention = t.attention(q, k, v, sequences, input.length(), gemma.heads(), gemma.kvHeads(), gemma.headDim(), shape);
    h = t.add(h, norm(t, w, block + "post_attention_layernorm", t.linear(w, linears.get(3), attention, tokens), tokens, hidden));

    x = norm(t, w, block + "pre_feedforward_layernorm", h, tokens, hidden);
    float[] gate = t.linear(w, linears.get(4), x, tokens);
    float[] up = t.linear(w, linears.get(5), x, tokens);
    float[] inner = t.gated(gate, up, Tape.Activation.GELU_TANH);
    return t.add(h, norm(t, w, block + "post_feedforward_layernorm", t.linear(w, linears.get(6), inner, tokens), tokens, hidden));
  }

  private float[] norm(Tape t, BlockWeights w, String name, float[] x, int rows, int width) {
    return t.rmsNorm(x, rows, width, Layers.onePlus(w.tensor(name + ".weight")), m.gemma.eps());
  }

  @Override
  float[] logits(Tape t, float[] hidden, int length) throws IOException {
    GemmaConfig gemma = m.gemma;
    float[] x = t.rmsNorm(hidden, length, gemma.hidden(), Layers.onePlus(m.weights.cached(m.bodyPrefix + "norm.weight")), gemma.eps());
    float[] logits = t.matmul(x, length, gemma.hidden(), head(m.bodyPrefix + "embed_tokens.weight"), m.vocabSize(), null);
    return gemma.finalSoftcap() > 0 ? t.softcap(logits, gemma.finalSoftcap()) : logits;
  }
}
