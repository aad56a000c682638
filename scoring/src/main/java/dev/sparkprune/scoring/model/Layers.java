package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;

/** The numeric building blocks of decoder layers, on row-major [tokens x width] float arrays. */
final class Layers {
  private Layers() {}

  /** Y = X W^T (+ bias) for X [tokens x in], W [out x in]. */
  static float[] linear(LinearAlgebra linalg, float[] x, int tokens, int in, float[] w, int out, float[] bias) {
    float[] y = new float[tokens * out];
    linalg.gemmTransposedB(tokens, out, in, 1f, x, 0, in, w, 0, in, 0f, y, 0, out);
    if (bias != null) {
      for (int t = 0; t < tokens; t++) {
        for (int o = 0; o < out; o++) {
          y[t * out + o] += bias[o];
        }
      }
    }
    return y;
  }

  /** RMSNorm: x / sqrt(mean(x^2) + eps) * weight (Llama's, in float32 as HF). */
  static float[] rmsNorm(float[] x, int tokens, int width, float[] weight, double eps) {
    float[] out = new float[x.length];
    for (int t = 0; t < tokens; t++) {
      int row = t * width;
      double squares = 0;
      for (int i = 0; i < width; i++) {
        squares += (double) x[row + i] * x[row + i];
      }
      float scale = (float) (1.0 / Math.sqrt(squares / width + eps));
      for (int i = 0; i < width; i++) {
        out[row + i] = weight[i] * (x[row + i] * scale);
      }
    }
    return out;
  }

  /** LayerNorm with biased variance, as torch.nn.LayerNorm. */
  static float[] layerNorm(float[] x, int tokens, int width, float[] weight, float[] bias, double eps) {
    float[] out = new float[x.length];
    for (int t = 0; t < tokens; t++) {
      int row = t * width;
      double mean = 0;
      for (int i = 0; i < width; i++) {
        mean += x[row + i];
      }
      mean /= width;
      double variance = 0;
      for (int i = 0; i < width; i++) {
        double centered = x[row + i] - mean;
        variance += centered * centered;
      }
      variance /= width;
      double scale = 1.0 / Math.sqrt(variance + eps);
      for (int i = 0; i < width; i++) {
        out[row + i] = (float) ((x[row + i] - mean) * scale) * weight[i] + bias[i];
      }
    }
    return out;
  }

  static void addInPlace(float[] target, float[] addend) {
    for (int i = 0; i < target.length; i++) {
      target[i] += addend[i];
    }
  }

  static float silu(float x) {
    return x / (1f + (float) Math.exp(-x));
  }

  /** GPT-2's gelu_new (tanh approximation). */
  static float geluTanh(float x) {
    double inner = Math.sqrt(2.0 / Math.PI) * (x + 0.044715 * x * x * x);
    return (float) (0.5 * x * (1.0 + Math.tanh(inner)));
  }

  /** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)). */
  static float geluErf(float x) {
    return (float) (0.5 * x * (1.0 + erf(x / Math.sqrt(2.0))));
  }

  /** erf via the Chebyshev-fitted erfc of Numerical Recipes: fractional error below 1.2e-7. */
  static double erf(double x) {
    double t = 1.0 / (1.0 + 0.5 * Math.abs(x));
    double y =
        1
            - t
                * Math.exp(
                    -x * x
                        - 1.26551223
                        + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
                            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0 ? y : -y;
  }

  static double logSumExp(float[] values, int offset, int count) {
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < count; i++) {
      max = Math.max(max, values[offset + i]);
    }
    double sum = 0;
    for (int i = 0; i < count; i++) {
      sum += Math.exp(values[offset + i] - max);
    }
    return max + Math.log(sum);
  }

  /**
   * Causal multi-head attention per sequence: softmax(Q_h K_g^T / sqrt(headDim)) V_g with kv
   * group g = h / (heads / kvHeads). q [tokens x heads*headDim], k and v [tokens x
   * kvHeads*headDim]; returns [tokens x heads*headDim].
   */
  static float[] causalAttention(
      LinearAlgebra linalg, float[] q, float[] k, float[] v, int sequences, int length, int heads, int kvHeads, int headDim) {
    return attention(linalg, q, k, v, sequences, length, heads, kvHeads, headDim, AttentionShape.causal(headDim));
  }

  /**
   * Query rows per attention tile: each tile's scores S = Q K^T cover only the keys its rows may
   * see, so the causal half of [length x length] is never computed and S stays small.
   */
  static final int ATTENTION_TILE = 128;

  /**
   * Attention as {@link #causalAttention} with the score scale, tanh soft-capping, sliding
   * window and sinks of {@code shape}: query i sees keys j with i - window < j <= i (Hugging
   * Face's sliding-window mask); capped scores are cap * tanh(score / cap), applied before the
   * mask. Per (sequence, head, tile of query rows): S = scale Q K^T over the tile's visible keys,
   * a masked softmax over each row, then O = P V, both products through {@code linalg}.
   */
  static float[] attention(
      LinearAlgebra linalg, float[] q, float[] k, float[] v, int sequences, int length, int heads, int kvHeads, int headDim, AttentionShape shape) {
    return attention(linalg, q, k, v, sequences, length, heads, kvHeads, headDim, headDim, shape);
  }

  /**
   * Attention whose values are narrower or wider than its queries and keys (DeepSeek's MLA:
   * q and k of qk_head_dim, v of v_head_dim): q [tokens x heads*qkDim], k [tokens x
   * kvHeads*qkDim], v [tokens x kvHeads*vDim]; returns [tokens x heads*vDim].
   */
  static float[] attention(
      LinearAlgebra linalg, float[] q, float[] k, float[] v, int sequences, int length, int heads, int kvHeads, int qkDim, int vDim,
      AttentionShape shape) {
    int qWidth = heads * qkDim;
    int kWidth = kvHeads * qkDim;
    int vWidth = kvHeads * vDim;
    int outWidth = heads * vDim;
    int groupSize = heads / kvHeads;
    float[] out = new float[sequences * length * outWidth];
    float[] scores = new float[Math.min(ATTENTION_TILE, length) * length];
    for (int s = 0; s < sequences; s++) {
      int base = s * length;
      for (int h = 0; h < heads; h++) {
        int g = h / groupSize;
        float sink = shape.sink(h);
        for (int i0 = 0; i0 < length; i0 += ATTENTION_TILE) {
          int rows = Math.min(ATTENTION_TILE, length - i0);
          int end = i0 + rows;
          // The first key any row of the tile sees; every row sees keys up to its own position.
          int from = firstKey(i0, shape.window());
          int keys = end - from;
          linalg.gemmTransposedB(
              rows, keys, qkDim, shape.scale(), q, (base + i0) * qWidth + h * qkDim, qWidth, k, (base + from) * kWidth + g * qkDim, kWidth,
              0f, scores, 0, keys);
          for (int r = 0; r < rows; r++) {
            int i = i0 + r;
            maskedSoftmax(scores, r * keys, keys, firstKey(i, shape.window()) - from, i - from, shape.softcap(), sink);
          }
          linalg.gemm(
              rows, vDim, keys, 1f, scores, 0, keys, v, (base + from) * vWidth + g * vDim, vWidth, 0f, out, (base + i0) * outWidth + h * vDim,
              outWidth);
        }
      }
    }
    return out;
  }

  /** The first key query {@code i} sees: 0, or the start of its sliding window. */
  private static int firstKey(int i, int window) {
    return window > 0 ? Math.max(0, i - window + 1) : 0;
  }

  /**
   * One row of attention probabilities in place: softmax over columns [first, last] of the row
   * (after soft-capping when {@code softcap} > 0), zero elsewhere in its {@code width} columns.
   * A finite {@code sink} (gpt-oss) is one more logit in the softmax whose probability is
   * dropped, so the row sums to less than one; negative infinity is none.
   */
  static void maskedSoftmax(float[] scores, int row, int width, int first, int last, double softcap, float sink) {
    if (softcap > 0) {
      softcap(scores, row + first, last + 1 - first, softcap);
    }
    float max = sink;
    for (int j = row + first; j <= row + last; j++) {
      max = Math.max(max, scores[j]);
    }
    float sum = (float) Math.exp(sink - max);
    for (int j = row + first; j <= row + last; j++) {
      float e = (float) Math.exp(scores[j] - max);
      scores[j] = e;
      sum += e;
    }
    float inverse = 1f / sum;
    for (int j = row + first; j <= row + last; j++) {
      scores[j] *= inverse;
    }
    java.util.Arrays.fill(scores, row, row + first, 0f);
    java.util.Arrays.fill(scores, row + last + 1, row + width, 0f);
  }

  /** Gemma's soft-capping in place: x = cap * tanh(x / cap) over {@code count} values. */
  static void softcap(float[] x, int offset, int count, double cap) {
    for (int i = offset; i < offset + count; i++) {
      x[i] = (float) (cap * Math.tanh(x[i] / cap));
    }
  }

  /** Gemma's RMSNorm scale (1 + w), computed in float as Hugging Face does. */
  static float[] onePlus(float[] weight) {
    float[] out = new float[weight.length];
    for (int i = 0; i < weight.length; i++) {
      out[i] = 1f + weight[i];
    }
    return out;
  }
}
