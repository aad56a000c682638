package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;

/**
 * The backward of {@link Layers#attention}, tile by tile as the forward runs: per (sequence,
 * head, tile of query rows) it recomputes the probabilities P from Q and K (nothing of size
 * [length x length] is kept between forward and backward, as flash attention does), then
 * dP = dO V^T, dV += P^T dO, dZ = P (dP - rowsum(P dP)) through the softmax, dS = dZ (1 - (z /
 * cap)^2) through the soft-cap, dQ += scale dS K and dK += scale dS^T Q.
 */
final class AttentionGradient {
  private AttentionGradient() {}

  static void backward(
      LinearAlgebra linalg, float[] q, float[] k, float[] v, float[] dOut, float[] dq, float[] dk, float[] dv, int sequences, int length,
      int heads, int kvHeads, int headDim, AttentionShape shape) {
    int qWidth = heads * headDim;
    int kvWidth = kvHeads * headDim;
    int groupSize = heads / kvHeads;
    int tile = Math.min(Layers.ATTENTION_TILE, length);
    float[] probabilities = new float[tile * length];
    float[] capped = new float[tile * length];
    float[] dp = new float[tile * length];
    float[] transposed = new float[tile * length];
    for (int s = 0; s < sequences; s++) {
      int base = s * length;
      for (int h = 0; h < heads; h++) {
        int g = h / groupSize;
        for (int i0 = 0; i0 < length; i0 += Layers.ATTENTION_TILE) {
          int rows = Math.min(Layers.ATTENTION_TILE, length - i0);
          int from = firstKey(i0, shape.window());
          int keys = i0 + rows - from;
          int qOffset = (base + i0) * qWidth + h * headDim;
          int kvOffset = (base + from) * kvWidth + g * headDim;
          linalg.gemmTransposedB(rows, keys, headDim, shape.scale(), q, qOffset, qWidth, k, kvOffset, kvWidth, 0f, probabilities, 0, keys);
          if (shape.softcap() > 0) {
            System.arraycopy(probabilities, 0, capped, 0, rows * keys);
            Layers.softcap(capped, 0, rows * keys, shape.softcap());
          }
          for (int r = 0; r < rows; r++) {
            int i = i0 + r;
            Layers.maskedSoftmax(probabilities, r * keys, keys, firstKey(i, shape.window()) - from, i - from, shape.softcap());
          }
          // dP = dO V^T; dV += P^T dO.
          linalg.gemmTransposedB(rows, keys, headDim, 1f, dOut, qOffset, qWidth, v, kvOffset, kvWidth, 0f, dp, 0, keys);
          transpose(probabilities, rows, keys, transposed);
          linalg.gemm(keys, headDim, rows, 1f, transposed, 0, rows, dOut, qOffset, qWidth, 1f, dv, kvOffset, kvWidth);
          // Through the softmax (masked entries have P = 0, so their dS is 0) and the soft-cap.
          for (int r = 0; r < rows; r++) {
            int row = r * keys;
            double dot = 0;
            for (int j = 0; j < keys; j++) {
              dot += (double) probabilities[row + j] * dp[row + j];
            }
            for (int j = 0; j < keys; j++) {
              double ds = probabilities[row + j] * (dp[row + j] - dot);
              if (shape.softcap() > 0) {
                double z = capped[row + j] / shape.softcap();
                ds *= 1 - z * z;
              }
              dp[row + j] = (float) ds;
            }
          }
          // dQ += scale dS K; dK += scale dS^T Q.
          linalg.gemm(rows, headDim, keys, shape.scale(), dp, 0, keys, k, kvOffset, kvWidth, 1f, dq, qOffset, qWidth);
          transpose(dp, rows, keys, transposed);
          linalg.gemm(keys, headDim, rows, shape.scale(), transposed, 0, rows, q, qOffset, qWidth, 1f, dk, kvOffset, kvWidth);
        }
      }
    }
  }

  /** The first key query {@code i} sees, as the forward's mask. */
  private static int firstKey(int i, int window) {
    return window > 0 ? Math.max(0, i - window + 1) : 0;
  }

  private static void transpose(float[] values, int rows, int cols, float[] out) {
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[c * rows + r] = values[r * cols + c];
      }
    }
  }
}
