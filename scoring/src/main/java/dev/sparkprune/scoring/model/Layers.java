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
   * Attention as {@link #causalAttention} with the score scale, tanh soft-capping and sliding
   * window of {@code shape}: query i sees keys j with i - window < j <= i (Hugging Face's
   * sliding-window mask); capped scores are cap * tanh(score / cap), applied before the mask.
   */
  static float[] attention(
      LinearAlgebra linalg, float[] q, float[] k, float[] v, int sequences, int length, int heads, int kvHeads, int headDim, AttentionShape shape) {
    int qWidth = heads * headDim;
    int kvWidth = kvHeads * headDim;
    int groupSize = heads / kvHeads;
    float[] out = new float[sequences * length * qWidth];
    float[] scores = new float[length * length];
    for (int s = 0; s < sequences; s++) {
      int base = s * length;
      for (int h = 0; h < heads; h++) {
        int g = h / groupSize;
        linalg.gemmTransposedB(
            length, length, headDim, shape.scale(), q, base * qWidth + h * headDim, qWidth, k, base * kvWidth + g * headDim, kvWidth, 0f, scores, 0, length);
        for (int i = 0; i < length; i++) {
          int row = i * length;
          int first = shape.window() > 0 ? Math.max(0, i - shape.window() + 1) : 0;
          if (shape.softcap() > 0) {
            softcap(scores, row + first, i + 1 - first, shape.softcap());
          }
          float max = Float.NEGATIVE_INFINITY;
          for (int j = first; j <= i; j++) {
            max = Math.max(max, scores[row + j]);
          }
          float sum = 0;
          for (int j = first; j <= i; j++) {
            float e = (float) Math.exp(scores[row + j] - max);
            scores[row + j] = e;
            sum += e;
          }
          float inverse = 1f / sum;
          for (int j = first; j <= i; j++) {
            scores[row + j] *= inverse;
          }
          java.util.Arrays.fill(scores, row, row + first, 0f);
          java.util.Arrays.fill(scores, row + i + 1, row + length, 0f);
        }
        linalg.gemm(length, headDim, length, 1f, scores, 0, length, v, base * kvWidth + g * headDim, kvWidth, 0f, out, base * qWidth + h * headDim, qWidth);
      }
    }
    return out;
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
