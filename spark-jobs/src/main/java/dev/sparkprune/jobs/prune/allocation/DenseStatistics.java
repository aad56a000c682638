package dev.sparkprune.jobs.prune.allocation;

import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import java.util.Map;

/**
 * Wanda scores from the dense model's per-channel statistics ({@code CalibratedScoring#denseChannelStatistics}),
 * for allocations that rank linears or blocks by them (OWL's outlier ratios, global Wanda).
 */
final class DenseStatistics {
  private DenseStatistics() {}

  /** Wanda scores |W| sqrt(scaler_row) of one linear's [out, in] weights, from the dense statistics of its input. */
  static float[] wandaScores(Map<String, CalibrationStatistics> statistics, PlannedLinear planned, float[] weights) {
    float[] scaler = statistics.get(planned.statisticsKey()).scalerRow();
    return Wanda.scores(planned.tensorName(), Weights.of((int) planned.linear.outFeatures(), (int) planned.linear.inFeatures(), weights), scaler, 1);
  }
}
