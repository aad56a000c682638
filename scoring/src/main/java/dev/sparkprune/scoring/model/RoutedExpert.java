package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;

/**
 * Step 3 of a MoE block ({@link MoeBlock}): one routed expert as a function of the rows routed
 * to it. It holds only its own weights, so a task can build the experts of one group and apply
 * each to the rows other tasks routed to it; the output for the same rows is the same bits as
 * in the unsharded forward (same shapes, same order).
 */
public interface RoutedExpert {
  /** The expert's index in its block. */
  int index();

  /**
   * The expert's unweighted output [rows x hidden] on {@code input} [rows x hidden]; the hook
   * sees the input of each group of its prunable linears (rows may be 0: then it sees empty
   * inputs and the result is empty).
   */
  float[] apply(LinearAlgebra linalg, float[] input, int rows, int sequences, InputHook hook);

  /**
   * Hands the hook this expert's linear inputs over every token instead of its routed rows
   * ({@link InputHook.ExpertInputs#ALL}); experts without prunable linears see nothing.
   */
  default void observeAllTokens(LinearAlgebra linalg, float[] x, int tokens, int sequences, InputHook hook) {}
}
