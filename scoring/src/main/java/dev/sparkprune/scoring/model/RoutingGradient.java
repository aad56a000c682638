package dev.sparkprune.scoring.model;

/**
 * Routing weights as a differentiable value: [tokens x experts], token t's weight for each of
 * its chosen top-k experts (bit for bit {@link Routing#weight}) and zero elsewhere. The choice
 * itself is piecewise constant, so the gradient reaches the router only through the chosen
 * experts' probabilities: with renormalisation w_k = p_k / S, S = sum over the chosen of p_j,
 * dp_k = (dw_k - sum_j dw_j w_j) / S, else dp_k = dw_k; then through the softmax,
 * dlogit_e = p_e (dp_e - sum_j p_j dp_j) over all experts.
 */
final class RoutingGradient {
  private RoutingGradient() {}

  /** The dense routing weights of {@code routing}, recorded on the tape against {@code logits}. */
  static float[] weights(Tape tape, Routing routing, float[] logits, int tokens, int experts, boolean normalize) {
    float[] dense = new float[tokens * experts];
    boolean[] chosen = new boolean[tokens * experts];
    for (int e = 0; e < experts; e++) {
      for (int t : routing.rowsOf(e)) {
        dense[t * experts + e] = routing.weight(t, e);
        chosen[t * experts + e] = true;
      }
    }
    tape.step(() -> {
      float[] dWeights = tape.gradient(dense);
      float[] dLogits = tape.gradient(logits);
      double[] probabilities = new double[experts];
      double[] dp = new double[experts];
      for (int t = 0; t < tokens; t++) {
        int row = t * experts;
        double logSum = Layers.logSumExp(logits, row, experts);
        double chosenSum = 0;
        double weighted = 0;
        for (int e = 0; e < experts; e++) {
          probabilities[e] = Math.exp(logits[row + e] - logSum);
          if (chosen[row + e]) {
            chosenSum += probabilities[e];
            weighted += (double) dWeights[row + e] * dense[row + e];
          }
        }
        double dot = 0;
        for (int e = 0; e < experts; e++) {
          dp[e] = !chosen[row + e] ? 0 : normalize ? (dWeights[row + e] - weighted) / chosenSum : dWeights[row + e];
          dot += probabilities[e] * dp[e];
        }
        for (int e = 0; e < experts; e++) {
          dLogits[row + e] += (float) (probabilities[e] * (dp[e] - dot));
        }
      }
    });
    return dense;
  }
}
