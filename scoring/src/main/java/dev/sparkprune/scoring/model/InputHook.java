package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.Linear;
import java.util.List;

/**
 * Receives the input of prunable linears during a block's forward pass: once per input group
 * (q/k/v share one input, gate/up another), with every linear that reads it.
 *
 * <p>A routed expert's groups receive what that expert actually sees: only the rows (tokens)
 * its router sent it, in token order, possibly none (then {@code tokens} is 0). With
 * {@link ExpertInputs#ALL} they receive every token instead, as if each expert saw all of them
 * (llm-compressor's convention); the block's output is the same either way.
 */
@FunctionalInterface
public interface InputHook {
  InputHook NONE = (linears, input, tokens, sequences) -> {};

  /** Which rows a routed expert's input groups are given. */
  enum ExpertInputs {
    /** The rows routed to the expert. */
    ROUTED,
    /** Every row, each expert's hidden activations computed on every token. */
    ALL
  }

  /**
   * @param input row-major [tokens x in_features]; valid only during the call
   * @param tokens rows of {@code input}; for a routed expert, the tokens routed to it
   * @param sequences the calibration sequences the rows came from (the whole batch)
   */
  void accept(List<Linear> linears, float[] input, int tokens, int sequences);

  default ExpertInputs expertInputs() {
    return ExpertInputs.ROUTED;
  }

  /**
   * Receives a routed expert's output on the tokens routed to it, before the routing weights
   * scale it (what expert saliency such as REAP needs). Called once per expert that got tokens.
   *
   * @param rows the tokens routed to the expert, ascending
   * @param routingWeights each row's routing weight for this expert
   * @param output row-major [rows x width]; valid only during the call
   */
  default void acceptExpertOutput(int expert, int[] rows, float[] routingWeights, float[] output, int width) {}
}
