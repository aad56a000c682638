package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.ValidationException;

/**
 * lm-evaluation-harness's {@code multiple_choice} metrics from the log-likelihood of each
 * choice: {@code acc} takes the argmax of the log-likelihoods, {@code acc_norm} the argmax of
 * each log-likelihood divided by its choice's length ({@code len(choice)} in Python: code
 * points, which are UTF-8 bytes for ASCII text). Both argmaxes return the first maximum, as
 * {@code np.argmax} does, and a NaN wins as it does there.
 */
public final class MultipleChoice {
  private MultipleChoice() {}

  public static int prediction(double[] logLikelihoods) {
    return argmax(logLikelihoods);
  }

  /** The argmax of log-likelihood / length; a zero length gives ±inf or NaN, as in numpy. */
  public static int normalizedPrediction(double[] logLikelihoods, int[] lengths) {
    ValidationException.check(
        lengths.length == logLikelihoods.length, "Invalid choice lengths: %d for %d choices", lengths.length, logLikelihoods.length);
    double[] normalized = new double[logLikelihoods.length];
    for (int i = 0; i < normalized.length; i++) {
      normalized[i] = logLikelihoods[i] / lengths[i];
    }
    return argmax(normalized);
  }

  private static int argmax(double[] values) {
    ValidationException.check(values.length > 0, "Cannot pick a choice among none");
    int best = 0;
    for (int i = 0; i < values.length; i++) {
      if (Double.isNaN(values[i])) {
        return i;
      }
      if (values[i] > values[best]) {
        best = i;
      }
    }
    return best;
  }

  /**
   * The mean of per-document scores (1 correct, 0 wrong) and lm-evaluation-harness's standard
   * error of it, {@code mean_stderr}: the sample standard deviation (n - 1) over sqrt(n); NaN
   * (reported as "N/A") for fewer than two documents.
   */
  public record Accuracy(int documents, double mean, double stderr) {
    public static Accuracy of(double[] scores) {
      ValidationException.check(scores.length > 0, "Cannot average the scores of no documents");
      double sum = 0;
      for (double score : scores) {
        sum += score;
      }
      double mean = sum / scores.length;
      if (scores.length < 2) {
        return new Accuracy(scores.length, mean, Double.NaN);
      }
      double squares = 0;
      for (double score : scores) {
        squares += (score - mean) * (score - mean);
      }
      double sampleStddev = Math.sqrt(squares / (scores.length - 1));
      return new Accuracy(scores.length, mean, sampleStddev / Math.sqrt(scores.length));
    }
  }
}
