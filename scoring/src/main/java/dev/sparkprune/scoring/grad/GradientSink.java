package dev.sparkprune.scoring.grad;

/**
 * Receives a {@link GradientPass}'s per-sample results, block by block from the last: for each
 * block, sequence by sequence in index order, dLoss/dW of each weight matrix, then the block's
 * first-order loss change.
 */
public interface GradientSink {
  /**
   * One sequence's dLoss/dW of one weight, row-major [rows x cols] ([out, in]).
   *
   * @param gradient valid only during the call
   */
  void accept(int sequence, int block, String tensor, int rows, int cols, float[] gradient);

  /**
   * One sequence's first-order estimate of the loss change from dropping the block:
   * dLoss/dOutput . (input - output), summed over its tokens (the block's residual branch removed,
   * to first order).
   */
  default void acceptBlockRemoval(int sequence, int block, double firstOrderChange) {}
}
