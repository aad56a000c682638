package dev.sparkprune.jobs.calibration;

import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.model.BlockWeights;
import java.io.IOException;
import java.io.Serializable;

/**
 * How a job changed a block before the calibration pass advances the hidden states through it
 * (sequential mode): the prune job swaps in its staged pruned linears. Runs on executors.
 */
public interface BlockEdit extends Serializable {
  /** The dense block itself: what one-shot and dense passes advance through. */
  BlockEdit NONE = new BlockEdit() {
    private static final long serialVersionUID = 1L;

    @Override
    public BlockWeights apply(JobContext context, BlockWeights dense) {
      return dense;
    }

    @Override
    public String cacheKey() {
      return "dense";
    }
  };

  /** The edited block from the dense one (which must not be modified: it may be cached). */
  BlockWeights apply(JobContext context, BlockWeights dense) throws IOException;

  /** Names this edit within a run, for the executor's block cache: equal keys, equal weights. */
  String cacheKey();
}
