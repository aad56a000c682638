package dev.sparkprune.scoring.structure;

import java.io.Serializable;
import java.util.Objects;

/**
 * What the driver needs of one block to choose its width and experts: the calibration statistics
 * and the weight norms the scores multiply them with (vectors of channel or head length, never
 * weight-sized). Norms come from the weights alone, so every chunk's summary carries the same.
 */
public record BlockSummary(
    int block, WidthStatistics statistics, double[] downColumnNorms, double[] oColumnNorms, double[] mlpWeightNorms,
    double[] kvWeightNorms) implements Serializable {
  public BlockSummary {
    Objects.requireNonNull(statistics, "statistics is null");
  }

  /** Folds a later chunk's statistics into this one's. */
  public BlockSummary plus(BlockSummary later) {
    return new BlockSummary(block, statistics.plus(later.statistics), downColumnNorms, oColumnNorms, mlpWeightNorms, kvWeightNorms);
  }
}
