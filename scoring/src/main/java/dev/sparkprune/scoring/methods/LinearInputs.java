package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.ValidationException;
import java.util.Objects;
import java.util.Optional;

/**
 * What a pruning method reads for one linear: its name (for messages), its dense weights, and
 * the statistics the job gathered for it. Methods take what they need and fail with a clear
 * message when it is absent.
 *
 * @param statistics the calibration statistics of the linear's input (scaler_row, X^T X, sums);
 *     empty for magnitude or a magnitude fallback
 * @param gradient a per-weight statistic shaped like the weights, such as the accumulated
 *     gradient magnitude GBLM and Pruner-Zero score with; empty where the job computed none
 */
public record LinearInputs(String layer, Weights weights, Optional<CalibrationStatistics> statistics, Optional<Weights> gradient) {
  public LinearInputs {
    Objects.requireNonNull(layer, "layer is null");
    Objects.requireNonNull(weights, "weights is null");
    Objects.requireNonNull(statistics, "statistics is null");
    Objects.requireNonNull(gradient, "gradient is null");
    gradient.ifPresent(g -> ValidationException.check(
        g.rows() == weights.rows() && g.cols() == weights.cols(),
        "Cannot prune layer %s: its gradient is [%d, %d] but the weight is [%d, %d]",
        layer, g.rows(), g.cols(), weights.rows(), weights.cols()));
  }

  /** The weights alone: enough for magnitude. */
  public static LinearInputs of(String layer, Weights weights) {
    return new LinearInputs(layer, weights, Optional.empty(), Optional.empty());
  }

  public LinearInputs withStatistics(CalibrationStatistics value) {
    return new LinearInputs(layer, weights, Optional.of(value), gradient);
  }

  public LinearInputs withGradient(Weights value) {
    return new LinearInputs(layer, weights, statistics, Optional.of(value));
  }

  /** The statistics, or a failure "Cannot {@code action} layer L with {@code method}: no calibration statistics". */
  public CalibrationStatistics requireStatistics(String action, String method) {
    ValidationException.check(statistics.isPresent(), "Cannot %s layer %s with %s: no calibration statistics", action, layer, method);
    return statistics.get();
  }

  /** The gradient, or a failure naming the method that needs it. */
  public Weights requireGradient(String method) {
    ValidationException.check(gradient.isPresent(), "Cannot prune layer %s with %s: no gradient statistics", layer, method);
    return gradient.get();
  }
}
