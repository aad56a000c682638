package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import java.io.IOException;
import java.util.Map;

/** {@link LlamaModel}'s block and head as tape ops: Llama, Mistral, Qwen2, Qwen3 and their MoE variants. */
final class LlamaBackward extends TapeBackward {
  private final LlamaModel m;

  LlamaBackward(LlamaModel model) {
    super(model);
    this.m = model;
  }

  @Override
  float[] block(Tape t, BlockWeights w, HiddenStates input) {
    int tokens = input.tokens();
    int sequences = input.sequences();
    String block = m.bodyPrefix + "layers." + w.block() + ".";
    Map<String, Linear> linears = linearsByName(w.block());
    float[] h = input.values();

    float[] x = t.rmsNorm(h, tokens, m.hidden, w.tensor(block + "input_layernorm.weight"), m.eps);
    float[] q = t.linear(w, linears.get("self_attn.q_proj"), x, tokens);
    float[] k = t.linear(w, linears.get("self_attn.k_proj"), x, tokens);
    float[] v = t.linear(w, linears.get("self_attn.v_proj"), x, tokens);
    if (m.qkNorm) {
      q = t.rmsNorm(q, tokens * m.heads, m.headDim, w.tensor(block + "self_attn.q_norm.weight"), m.eps);
      k = t.rmsNorm(k, tokens * m.kvHeads, m.headDim, w.tensor(block + "self_attn.k_norm.weight"), m.eps);
    }
    q = t.rope(m.rope, q, sequences, input.length(), m.heads);
    k = t.rope(m.rope, k, sequences, input.length(), m.kvHeads);
    float[] attention = t.attention(q, k, v, sequences, input.length(), m.heads, m.kvHeads, m.headDim, AttentionShape.causal(m.headDim));
    h = t.add(h, t.linear(w, linears.get("self_attn.o_proj"), attention, tokens));

    x = t.rmsNorm(h, tokens, m.hidden, w.tensor(block + "post_attention_layernorm.weight"), m.eps);
    if (m.moe.isPresent() && m.moe.get().isSparse(w.block())) {
      return t.add(h, sparseMoe(t, m.moe.get(), w, block, linears, x, tokens));
    }
    float[] gate = t.linear(w, linears.get("mlp.gate_proj"), x, tokens);
    float[] up = t.linear(w, linears.get("mlp.up_proj"), x, tokens);
    float[] inner = t.gated(gate, up, Tape.Activation.SILU);
    return t.add(h, t.linear(w, linears.get("mlp.down_proj"), inner, tokens));
  }

  /**
   * {@link SparseMoe#run} as tape ops: router, top-k routing weights (differentiable through the
   * chosen experts' probabilities), each expert on its routed rows summed in expert order, and
   * Qwen2-MoE's gated shared expert.
   */
  private float[] sparseMoe(Tape t, MixtureOfExperts moe, BlockWeights w, String block, Map<String, Linear> linears, float[] x, int tokens) {
    int experts = moe.experts();
    int hidden = m.hidden;
    String router = block + moe.router() + ".weight";
    float[] logits = t.matmul(x, tokens, hidden, w.tensor(router), experts, router);
    Routing routing = Routing.route(logits, tokens, experts, moe.topK(), moe.normalizeTopK());
    float[] routingWeights = RoutingGradient.weights(t, routing, logits, tokens, experts, moe.normalizeTopK());
    float[] out = t.zeros(tokens * hidden);
    for (int e = 0; e < experts; e++) {
      int[] rows = routing.rowsOf(e);
      float[] routed = t.gatherRows(x, rows, hidden);
      float[] gate = t.linear(w, linears.get(moe.expertLinear(e, 0)), routed, rows.length);
      float[] up = t.linear(w, linears.get(moe.expertLinear(e, 1)), routed, rows.length);
      float[] y = t.linear(w, linears.get(moe.expertLinear(e, 2)), t.gated(gate, up, Tape.Activation.SILU), rows.length);
      t.addScaledRows(out, y, rows, hidden, routingWeights, experts, e);
    }
    if (moe.hasSharedExpert()) {
      float[] gate = t.linear(w, linears.get(moe.sharedLinear(0)), x, tokens);
      float[] up = t.linear(w, linears.get(moe.sharedLinear(1)), x, tokens);
      float[] y = t.linear(w, linears.get(moe.sharedLinear(2)), t.gated(gate, up, Tape.Activation.SILU), tokens);
      String sharedGate = block + moe.sharedGate() + ".weight";
      t.addSigmoidScaledRows(out, y, t.matmul(x, tokens, hidden, w.tensor(sharedGate), 1, sharedGate), hidden);
    }
    return out;
  }

  @Override
  float[] logits(Tape t, float[] hidden, int length) throws IOException {
    float[] x = t.rmsNorm(hidden, length, m.hidden, m.weights.cached(m.bodyPrefix + "norm.weight"), m.eps);
    return t.matmul(x, length, m.hidden, head(m.bodyPrefix + "embed_tokens.weight"), m.vocabSize(), null);
  }
}
