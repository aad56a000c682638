package dev.sparkprune.jobs.calibration;

import dev.sparkprune.scoring.model.HiddenStates;
import java.io.Serializable;
import java.util.Objects;

/**
 * A fixed group of calibration samples and their hidden states at the current block, as one
 * batch (sequences = the chunk's samples), cached on the executors between stages and never
 * collected. Chunks are fixed by --nsamples and the chunk size, never by partitioning, so a
 * chunk's batch, and so its results, are the same on any cluster.
 */
public final class SampleChunk implements Serializable {
  private static final long serialVersionUID = 2L;

  private final int index;
  private final int[][] tokens;
  private final HiddenStates hidden;

  public SampleChunk(int index, int[][] tokens, HiddenStates hidden) {
    this.index = index;
    this.tokens = Objects.requireNonNull(tokens, "tokens is null");
    this.hidden = Objects.requireNonNull(hidden, "hidden is null");
  }

  public int index() {
    return index;
  }

  public int[][] tokens() {
    return tokens;
  }

  /** The chunk's samples as one batch [samples x seqlen x hidden]. */
  public HiddenStates hidden() {
    return hidden;
  }

  SampleChunk with(HiddenStates next) {
    return new SampleChunk(index, tokens, next);
  }
}
