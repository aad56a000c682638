package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.DecoderShape;
import dev.sparkprune.tensorio.arch.Linear;
import java.io.IOException;
import java.util.List;

/** {@link Phi3Model}'s block and head as tape ops: fused qkv_proj and gate_up_proj, partial rotary. */
final class Phi3Backward extends TapeBackward {
  private final Phi3Model m;

  Phi3Backward(Phi3Model model) {
    super(model);
    this.m = model;
  }

  @Override
  float[] block(Tape t, BlockWeights w, HiddenStates input) {
    DecoderShape shape = m.shape;
    int tokens = input.tokens();
    int sequences = input.sequences();
    int hidden = shape.hidden();
    int headDim = shape.headDim();
    String block = "model.layers." + w.block() + ".";
    List<Linear> linears = m.layout().blocks().get(w.block()).linears();
    float[] h = input.values();

    float[] x = t.rmsNorm(h, tokens, hidden, w.tensor(block + "input_layernorm.weight"), m.eps);
    float[][] qkv = t.splitWidths(t.linear(w, linears.get(0), x, tokens), tokens, shape.heads() * headDim, shape.kvHeads() * headDim,
        shape.kvHeads() * headDim);
    float[] q = t.rope(m.rope, qkv[0], sequences, input.length(), shape.heads());
    float[] k = t.rope(m.rope, qkv[1], sequences, input.length(), shape.kvHeads());
    float[] attention = t.attention(q, k, qkv[2], sequences, input.length(), shape.heads(), shape.kvHeads(), headDim, m.attentionShape);
    h = t.add(h, t.linear(w, linears.get(1), attention, tokens));

    x = t.rmsNorm(h, tokens, hidden, w.tensor(block + "post_attention_layernorm.weight"), m.eps);
    float[][] gateUp = t.splitWidths(t.linear(w, linears.get(2), x, tokens), tokens, shape.intermediate(), shape.intermediate());
    float[] inner = t.gated(gateUp[0], gateUp[1], Tape.Activation.SILU);
    return t.add(h, t.linear(w, linears.get(3), inner, tokens));
  }

  @Override
  float[] logits(Tape t, float[] hidden, int length) throws IOException {
    float[] x = t.rmsNorm(hidden, length, m.shape.hidden(), m.weights.cached("model.norm.weight"), m.eps);
    return t.matmul(x, length, m.shape.hidden(), head("model.embed_tokens.weight"), m.vocabSize(), null);
  }
}
