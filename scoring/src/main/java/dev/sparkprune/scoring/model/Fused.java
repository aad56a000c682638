package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.Linear;

/** Helpers for linears described by the layout: apply with bias, split fused outputs. */
final class Fused {
  private Fused() {}

  static float[] apply(LinearAlgebra linalg, BlockWeights w, Linear linear, float[] x, int tokens) {
    float[] bias = linear.biasName().map(w::tensor).orElse(null);
    return Layers.linear(linalg, x, tokens, (int) linear.inFeatures(), w.tensor(linear.tensorName()), (int) linear.outFeatures(), bias);
  }

  /** SwiGLU's hidden activations silu(x gate^T) * (x up^T), [tokens x intermediate]. */
  static float[] swiGlu(LinearAlgebra linalg, BlockWeights w, Linear gate, Linear up, float[] x, int tokens) {
    float[] hidden = apply(linalg, w, gate, x, tokens);
    float[] upOut = apply(linalg, w, up, x, tokens);
    for (int i = 0; i < hidden.length; i++) {
      hidden[i] = Layers.silu(hidden[i]) * upOut[i];
    }
    return hidden;
  }

  /** Splits [tokens x parts*width] into parts of [tokens x width] by column blocks (GPT-2's q | k | v). */
  static float[][] splitColumns(float[] fused, int tokens, int width, int parts) {
    float[][] out = new float[parts][tokens * width];
    for (int t = 0; t < tokens; t++) {
      for (int p = 0; p < parts; p++) {
        System.arraycopy(fused, t * parts * width + p * width, out[p], t * width, width);
      }
    }
    return out;
  }

  /**
   * Splits [tokens x sum(widths)] into column blocks of the given widths, in order (Phi-3's
   * qkv_proj rows [q; k; v] and gate_up_proj rows [gate; up] give such outputs).
   */
  static float[][] splitWidths(float[] fused, int tokens, int... widths) {
    int total = 0;
    for (int width : widths) {
      total += width;
    }
    float[][] out = new float[widths.length][];
    for (int p = 0, offset = 0; p < widths.length; offset += widths[p], p++) {
      out[p] = new float[tokens * widths[p]];
      for (int t = 0; t < tokens; t++) {
        System.arraycopy(fused, t * total + offset, out[p], t * widths[p], widths[p]);
      }
    }
    return out;
  }

  /**
   * Splits GPT-NeoX's query_key_value output, laid out per head as [q_h | k_h | v_h], into
   * q, k, v of [tokens x heads*headDim] each.
   */
  static float[][] splitPerHead(float[] fused, int tokens, int heads, int headDim) {
    int width = heads * headDim;
    float[][] out = new float[3][tokens * width];
    for (int t = 0; t < tokens; t++) {
      for (int h = 0; h < heads; h++) {
        for (int p = 0; p < 3; p++) {
          System.arraycopy(fused, t * 3 * width + h * 3 * headDim + p * headDim, out[p], t * width + h * headDim, headDim);
        }
      }
    }
    return out;
  }
}
