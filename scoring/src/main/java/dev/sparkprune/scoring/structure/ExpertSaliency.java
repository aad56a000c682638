package dev.sparkprune.scoring.structure;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;

/**
 * Per routed expert of one block, over the calibration tokens: how many tokens were routed to it
 * (routing frequency) and the sum over those tokens of router weight × ‖expert output‖₂, whose
 * mean is REAP's saliency (Lasby et al. 2025, "REAP: Router-weighted Expert Activation
 * Pruning"): an expert that is rarely chosen, chosen with small weight, or contributes small
 * outputs matters little. Partials add; a job folds them in chunk order.
 */
public final class ExpertSaliency implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Which saliency orders the experts. */
  public enum Metric {
    REAP,
    FREQUENCY
  }

  private final double[] weightedNormSums;
  private final long[] routedTokens;

  private ExpertSaliency(double[] weightedNormSums, long[] routedTokens) {
    this.weightedNormSums = weightedNormSums;
    this.routedTokens = routedTokens;
  }

  public static ExpertSaliency empty(int experts) {
    return new ExpertSaliency(new double[experts], new long[experts]);
  }

  public int experts() {
    return routedTokens.length;
  }

  /** Adds an expert's outputs [rows x width] on its routed tokens with their routing weights. */
  public void add(int expert, float[] routingWeights, float[] output, int rows, int width) {
    ValidationException.check(output.length >= (long) rows * width && routingWeights.length >= rows, "Invalid expert %d output", expert);
    for (int i = 0; i < rows; i++) {
      double squares = 0;
      for (int c = 0; c < width; c++) {
        double y = output[i * width + c];
        squares += y * y;
      }
      weightedNormSums[expert] += routingWeights[i] * Math.sqrt(squares);
    }
    routedTokens[expert] += rows;
  }

  public ExpertSaliency plus(ExpertSaliency other) {
    ValidationException.check(other.experts() == experts(), "Cannot fold saliency of %d experts into %d", other.experts(), experts());
    double[] sums = weightedNormSums.clone();
    long[] counts = routedTokens.clone();
    for (int e = 0; e < sums.length; e++) {
      sums[e] += other.weightedNormSums[e];
      counts[e] += other.routedTokens[e];
    }
    return new ExpertSaliency(sums, counts);
  }

  public long routedTokens(int expert) {
    return routedTokens[expert];
  }

  /** Mean router weight × ‖output‖₂ over the tokens routed to the expert; 0 when none were. */
  public double reap(int expert) {
    return routedTokens[expert] == 0 ? 0 : weightedNormSums[expert] / routedTokens[expert];
  }

  public double[] scores(Metric metric) {
    double[] scores = new double[experts()];
    for (int e = 0; e < scores.length; e++) {
      scores[e] = metric == Metric.REAP ? reap(e) : routedTokens[e];
    }
    return scores;
  }
}
