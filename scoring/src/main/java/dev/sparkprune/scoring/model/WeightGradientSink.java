package dev.sparkprune.scoring.model;

/**
 * Receives dLoss/dW of one weight matrix from a backward pass: row-major [rows x cols] in the
 * [out, in] orientation of the forward's weights (GPT-2's Conv1D included).
 */
@FunctionalInterface
public interface WeightGradientSink {
  WeightGradientSink NONE = (tensor, rows, cols, gradient) -> {};

  /**
   * @param tensor the weight's tensor name in the archive
   * @param gradient valid only during the call
   */
  void accept(String tensor, int rows, int cols, float[] gradient);
}
