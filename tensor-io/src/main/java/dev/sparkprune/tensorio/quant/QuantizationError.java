package dev.sparkprune.tensorio.quant;

import java.io.Serializable;

/**
 * How far a re-quantized tensor is from the floats it was made from: the sums behind the relative
 * Frobenius error ||Q(W) - W||_F / ||W||_F and the largest absolute difference, accumulated in
 * double so per-expert results merge exactly into a per-tensor figure.
 */
public record QuantizationError(long values, double squaredError, double squaredReference, double maxAbsError)
    implements Serializable {
  public static final QuantizationError NONE = new QuantizationError(0, 0, 0, 0);

  /** ||Q(W) - W||_F / ||W||_F; 0 for an all-zero reference that was reproduced exactly. */
  public double relativeFrobenius() {
    if (squaredError == 0) {
      return 0;
    }
    return Math.sqrt(squaredError / squaredReference);
  }

  public QuantizationError plus(QuantizationError other) {
    return new QuantizationError(
        values + other.values,
        squaredError + other.squaredError,
        squaredReference + other.squaredReference,
        Math.max(maxAbsError, other.maxAbsError));
  }

  /** Accumulates one tensor's error value by value. */
  static final class Accumulator {
    private long values;
    private double squaredError;
    private double squaredReference;
    private double maxAbsError;

    void add(float reference, float quantized) {
      double error = (double) quantized - reference;
      values++;
      squaredError += error * error;
      squaredReference += (double) reference * reference;
      maxAbsError = Math.max(maxAbsError, Math.abs(error));
    }

    QuantizationError result() {
      return new QuantizationError(values, squaredError, squaredReference, maxAbsError);
    }
  }
}
