package dev.sparkprune.jobs.calibration;

import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.arch.Linear;
import java.util.List;
import java.util.Map;

/**
 * One chunk's visit of one block, created by {@link BlockVisitor#start}. During the block's
 * forward pass it is the block's {@link InputHook}: it sees the input of each group of
 * prunable linears (for a routed expert, the rows routed to it, so a call's {@code tokens}
 * also tell how many tokens the router sent that expert). Then {@link #finish} gets the
 * block's input and output for the chunk and returns the chunk's partials by key.
 */
public interface ChunkVisit<P> extends InputHook {
  /** Visitors that need only the block's input and output ignore the linears' inputs. */
  @Override
  default void accept(List<Linear> linears, float[] input, int tokens, int sequences) {}

  /**
   * @param input the chunk's hidden states entering the block, [samples x seqlen x hidden]
   * @param output what the block (dense, with this hook) gave for them; valid during the call
   * @return partials by key, in a deterministic order, the same keys for every chunk (a key
   *     with no rows in a chunk still gets its empty partial); folded per key over the chunks
   *     ({@link PairwiseFold}), which refuses a key some chunk did not give
   */
  Map<String, P> finish(HiddenStates input, HiddenStates output);

  /**
   * The partials of a visit that saw part of an expert-parallel block (its attention, or one
   * expert group's experts) and never sees the block's input and output: what its hooks
   * collected, by key. The block's last part, which combines the experts' outputs, gets
   * {@link #finish}. Each key still gets exactly one partial per chunk: the parts' hooks see
   * disjoint linears. Visitors that need only the input and output give nothing here.
   */
  default Map<String, P> finishPart() {
    return Map.of();
  }
}
