package dev.sparkprune.jobs.plan;

import dev.sparkprune.scoring.stats.CalibrationStatistics;

/**
 * What a calibration keeps per input group of an expert's linears, for the memory plan: nothing
 * (a forward pass: eval, advancing the states), routing saliency (shrink: a sum and a count per
 * expert), per-channel sums (Wanda, RIA: Σx² and Σx in double), or X^T X as well (SparseGPT,
 * ADMM, DSnoT's update: in double, or float for very wide layers).
 */
public enum ExpertStatistics {
  NONE,
  SALIENCY,
  CHANNEL_SUMS,
  GRAM_FLOAT,
  GRAM_DOUBLE;

  /** What the prune job keeps for a method's X^T X storage: per-channel sums, and X^T X where asked. */
  public static ExpertStatistics of(CalibrationStatistics.HessianStorage storage) {
    switch (storage) {
      case NONE:
        return CHANNEL_SUMS;
      case FLOAT:
        return GRAM_FLOAT;
      case DOUBLE:
        return GRAM_DOUBLE;
      default:
        throw new IllegalStateException("Unknown storage " + storage);
    }
  }

  /** Bytes of one input group's statistics over {@code channels} input channels, once folded. */
  public long bytes(long channels) {
    switch (this) {
      case NONE:
        return 0;
      case SALIENCY:
        return 16;
      case CHANNEL_SUMS:
        return 16 * channels;
      case GRAM_FLOAT:
        return 16 * channels + 4 * channels * channels;
      case GRAM_DOUBLE:
        return 16 * channels + 8 * channels * channels;
      default:
        throw new IllegalStateException("Unknown statistics " + this);
    }
  }

  /** Float scratch of one X^T X update (a SYRK's output before it is added in double). */
  public long scratchBytes(long channels) {
    return this == GRAM_FLOAT || this == GRAM_DOUBLE ? 4 * channels * channels : 0;
  }
}
