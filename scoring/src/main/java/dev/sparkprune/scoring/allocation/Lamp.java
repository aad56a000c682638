package dev.sparkprune.scoring.allocation;

import java.util.Arrays;

/**
 * LAMP scores (Lee et al., "Layer-adaptive Sparsity for the Magnitude-based Pruning"): within a
 * layer, order the weights by w^2 ascending (ties by index); the score of weight u is
 * w_u^2 / sum of w_v^2 over v at or after u in that order. Scores are comparable across layers,
 * so one global threshold yields layer-adaptive sparsities.
 */
public final class Lamp {
  private Lamp() {}

  public static float[] scores(float[] weights) {
    int n = weights.length;
    long[] order = new long[n];
    for (int i = 0; i < n; i++) {
      // Sort key: the float bits of w^2 (non-negative, so integer order is float order), then index.
      float square = weights[i] * weights[i];
      order[i] = ((long) Float.floatToIntBits(square + 0f) << 32) | i;
    }
    Arrays.sort(order);
    float[] scores = new float[n];
    double suffix = 0;
    for (int k = n - 1; k >= 0; k--) {
      int index = (int) order[k];
      double square = (double) weights[index] * weights[index];
      suffix += square;
      scores[index] = suffix == 0 ? 0f : (float) (square / suffix);
    }
    return scores;
  }
}
