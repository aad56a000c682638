package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import java.util.List;
import java.util.Map;

/**
 * The sparse MLP of Mixtral, Qwen2-MoE and Qwen3-MoE: each token runs through its top-k
 * SwiGLU experts, their outputs summed with the routing weights in expert order; Qwen2-MoE adds
 * a shared expert scaled by sigmoid(shared_expert_gate(x)). Routed experts compute only their
 * routed rows, so a token's output depends on no other expert.
 */
final class SparseMoe {
  private SparseMoe() {}

  /**
   * The MLP output [tokens x hidden] for the normed input x; the hook sees each expert's groups
   * (see {@link InputHook} for which rows).
   */
  static float[] run(
      LinearAlgebra linalg, MixtureOfExperts moe, BlockWeights w, String block, Map<String, Linear> linears, float[] x,
      int tokens, int hidden, int sequences, InputHook hook) {
    int experts = moe.experts();
    float[] logits = Layers.linear(linalg, x, tokens, hidden, w.tensor(block + moe.router() + ".weight"), experts, null);
    Routing routing = Routing.route(logits, tokens, experts, moe.topK(), moe.normalizeTopK());
    boolean allTokens = hook.expertInputs() == InputHook.ExpertInputs.ALL;
    float[] out = new float[tokens * hidden];
    for (int e = 0; e < experts; e++) {
      Linear gate = linears.get(moe.expertLinear(e, 0));
      Linear up = linears.get(moe.expertLinear(e, 1));
      Linear down = linears.get(moe.expertLinear(e, 2));
      int[] rows = routing.rowsOf(e);
      float[] routedInput = gatherRows(x, rows, hidden);
      if (allTokens) {
        // Statistics over every token; the output below still uses only the routed rows.
        hook.accept(List.of(gate, up), x, tokens, sequences);
        hook.accept(List.of(down), Fused.swiGlu(linalg, w, gate, up, x, tokens), tokens, sequences);
      } else {
        hook.accept(List.of(gate, up), routedInput, rows.length, sequences);
      }
      if (rows.length == 0) {
        if (!allTokens) {
          hook.accept(List.of(down), new float[0], 0, sequences);
        }
        continue;
      }
      float[] inner = Fused.swiGlu(linalg, w, gate, up, routedInput, rows.length);
      if (!allTokens) {
        hook.accept(List.of(down), inner, rows.length, sequences);
      }
      float[] y = Fused.apply(linalg, w, down, inner, rows.length);
      hook.acceptExpertOutput(e, rows, routingWeights(routing, rows, e), y, hidden);
      for (int i = 0; i < rows.length; i++) {
        float weight = routing.weight(rows[i], e);
        int target = rows[i] * hidden;
        for (int c = 0; c < hidden; c++) {
          out[target + c] += y[i * hidden + c] * weight;
        }
      }
    }
    if (moe.hasSharedExpert()) {
      addSharedExpert(linalg, moe, w, block, linears, x, tokens, hidden, sequences, hook, out);
    }
    return out;
  }

  private static void addSharedExpert(
      LinearAlgebra linalg, MixtureOfExperts moe, BlockWeights w, String block, Map<String, Linear> linears, float[] x,
      int tokens, int hidden, int sequences, InputHook hook, float[] out) {
    Linear gate = linears.get(moe.sharedLinear(0));
    Linear up = linears.get(moe.sharedLinear(1));
    Linear down = linears.get(moe.sharedLinear(2));
    hook.accept(List.of(gate, up), x, tokens, sequences);
    float[] inner = Fused.swiGlu(linalg, w, gate, up, x, tokens);
    hook.accept(List.of(down), inner, tokens, sequences);
    float[] y = Fused.apply(linalg, w, down, inner, tokens);
    float[] scale = Layers.linear(linalg, x, tokens, hidden, w.tensor(block + moe.sharedGate() + ".weight"), 1, null);
    for (int t = 0; t < tokens; t++) {
      float sigmoid = (float) (1.0 / (1.0 + Math.exp(-scale[t])));
      for (int c = 0; c < hidden; c++) {
        out[t * hidden + c] += sigmoid * y[t * hidden + c];
      }
    }
  }

  private static float[] routingWeights(Routing routing, int[] rows, int expert) {
    float[] weights = new float[rows.length];
    for (int i = 0; i < rows.length; i++) {
      weights[i] = routing.weight(rows[i], expert);
    }
    return weights;
  }

  /** Rows {@code rows} of x [tokens x width], in that order. */
  static float[] gatherRows(float[] x, int[] rows, int width) {
    float[] out = new float[rows.length * width];
    for (int i = 0; i < rows.length; i++) {
      System.arraycopy(x, rows[i] * width, out, i * width, width);
    }
    return out;
  }
}
