package dev.sparkprune.jobs.calibration;

import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.model.InputHook;
import java.io.Serializable;

/**
 * What a job plugs into the {@link CalibrationPass}: for each chunk of calibration samples that
 * runs through a block, a fresh {@link ChunkVisit} sees the inputs of the block's prunable
 * linears (it is the block's {@code InputHook}), then the block's input and output hidden
 * states, and returns small partials by key. The pass folds each key's partials with
 * {@link #merge} over a fixed pairwise tree of the chunks ({@link PairwiseFold}), so results
 * never depend on partitioning.
 *
 * <p>Visitors travel to executors: serializable, with final fields of resolved settings only.
 * Examples: {@link LinearInputStatistics} (Wanda/SparseGPT statistics per input group); a
 * structured job's block-influence visitor returning the cosine distance between a chunk's
 * block input and output, keyed by block.
 *
 * @param <P> a key's partial result: serializable, small (never weight-sized per chunk)
 */
public interface BlockVisitor<P extends Serializable> extends Serializable {
  /** Starts visiting one chunk's batch of samples through {@code block}. */
  ChunkVisit<P> start(int block, int chunk, ComputeBackend backend);

  /**
   * Folds a later chunk's partial into the earlier chunks' fold and returns the result (it may
   * update {@code earlier} in place): two adjacent runs of chunks, the earlier run first.
   */
  P merge(P earlier, P later);

  /**
   * Whether a chunk's partials are small enough to come back to the driver with the step's own
   * job and be folded there (per-channel vectors, scalars), instead of a shuffle by key and a
   * second job. Never for X^T X: the driver holds nothing weight-sized.
   */
  default boolean foldOnDriver() {
    return false;
  }

  /**
   * Which rows its visits want a routed expert's linear inputs on (what their {@link
   * ChunkVisit#expertInputs} say): an expert-parallel block ships every token to every expert
   * group for {@link InputHook.ExpertInputs#ALL}.
   */
  default InputHook.ExpertInputs expertInputs() {
    return InputHook.ExpertInputs.ROUTED;
  }
}
