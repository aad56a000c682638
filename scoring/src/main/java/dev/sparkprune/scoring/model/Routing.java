package dev.sparkprune.scoring.model;

/**
 * Top-k expert routing as Hugging Face's Mixtral and Qwen-MoE blocks compute it: a softmax over
 * each token's router logits in float32, the k largest probabilities (on ties the lower expert
 * index wins, as a stable descending sort), divided by their sum when the model renormalises.
 */
final class Routing {
  private final int tokens;
  private final int k;
  /** [tokens x k] chosen experts, highest probability first. */
  private final int[] chosen;
  /** [tokens x k] their routing weights. */
  private final float[] weights;

  private Routing(int tokens, int k, int[] chosen, float[] weights) {
    this.tokens = tokens;
    this.k = k;
    this.chosen = chosen;
    this.weights = weights;
  }

  /** Routes each row of {@code logits} [tokens x experts]. */
  static Routing route(float[] logits, int tokens, int experts, int k, boolean normalize) {
    int[] chosen = new int[tokens * k];
    float[] weights = new float[tokens * k];
    float[] probabilities = new float[experts];
    for (int t = 0; t < tokens; t++) {
      int row = t * experts;
      double logSum = Layers.logSumExp(logits, row, experts);
      for (int e = 0; e < experts; e++) {
        probabilities[e] = (float) Math.exp(logits[row + e] - logSum);
      }
      float total = 0;
      for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < experts; e++) {
          // Strictly greater: the lower index keeps a tie.
          if (!taken(chosen, t * k, j, e) && (best < 0 || probabilities[e] > probabilities[best])) {
            best = e;
          }
        }
        chosen[t * k + j] = best;
        weights[t * k + j] = probabilities[best];
        total += probabilities[best];
      }
      if (normalize) {
        for (int j = 0; j < k; j++) {
          weights[t * k + j] /= total;
        }
      }
    }
    return new Routing(tokens, k, chosen, weights);
  }

  private static boolean taken(int[] chosen, int offset, int count, int expert) {
    for (int j = 0; j < count; j++) {
      if (chosen[offset + j] == expert) {
        return true;
      }
    }
    return false;
  }

  /** The tokens routed to {@code expert}, ascending. */
  int[] rowsOf(int expert) {
    int count = 0;
    for (int t = 0; t < tokens; t++) {
      count += weightIndex(t, expert) >= 0 ? 1 : 0;
    }
    int[] rows = new int[count];
    for (int t = 0, i = 0; t < tokens; t++) {
      if (weightIndex(t, expert) >= 0) {
        rows[i++] = t;
      }
    }
    return rows;
  }

  /** Token t's routing weight for {@code expert}; the expert must be among its chosen. */
  float weight(int t, int expert) {
    return weights[weightIndex(t, expert)];
  }

  private int weightIndex(int t, int expert) {
    for (int j = 0; j < k; j++) {
      if (chosen[t * k + j] == expert) {
        return t * k + j;
      }
    }
    return -1;
  }
}
