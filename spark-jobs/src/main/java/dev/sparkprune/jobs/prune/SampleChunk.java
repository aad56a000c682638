package dev.sparkprune.jobs.prune;

import dev.sparkprune.scoring.model.HiddenStates;
import java.io.Serializable;

/**
 * A fixed group of calibration samples and their hidden states at the current block, cached on
 * the executors between stages and never collected. Samples run one at a time, so a sample's
 * activations do not depend on which other samples share its chunk or partition.
 */
final class SampleChunk implements Serializable {
  private static final long serialVersionUID = 1L;

  final int index;
  final int[][] tokens;
  final HiddenStates[] hidden;

  SampleChunk(int index, int[][] tokens, HiddenStates[] hidden) {
    this.index = index;
    this.tokens = tokens;
    this.hidden = hidden;
  }
}
