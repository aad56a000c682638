package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.Linear;
import java.util.List;

/**
 * Receives the input of prunable linears during a block's forward pass: once per input group
 * (q/k/v share one input, gate/up another), with every linear that reads it.
 */
@FunctionalInterface
public interface InputHook {
  InputHook NONE = (linears, input, tokens, sequences) -> {};

  /**
   * @param input row-major [tokens x in_features]; valid only during the call
   */
  void accept(List<Linear> linears, float[] input, int tokens, int sequences);
}
