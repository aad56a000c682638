package dev.sparkprune.jobs.prune.allocation;

import dev.sparkprune.jobs.prune.PruneRun;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.calibration.CalibrationPass;
import dev.sparkprune.jobs.calibration.LinearInputStatistics;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import java.util.HashMap;
import java.util.Map;

/**
 * Wanda's per-channel statistics of every block of the dense model, for allocations that rank
 * linears or blocks by Wanda scores (OWL's outlier ratios, global Wanda): one calibration pass,
 * one forward pass per block, only the small per-channel vectors reach the driver.
 */
final class DenseStatistics {
  private DenseStatistics() {}

  static Map<String, CalibrationStatistics> collect(PruneRun run) {
    LinearInputStatistics visitor = new LinearInputStatistics(CalibrationStatistics.HessianStorage.NONE, InputHook.ExpertInputs.ROUTED);
    Map<String, CalibrationStatistics> statistics = new HashMap<>();
    try (CalibrationPass pass = run.embed()) {
      for (int b = 0; b < run.blocks(); b++) {
        statistics.putAll(pass.collectAndAdvance(visitor).asMap());
      }
    }
    return statistics;
  }

  /** Wanda scores |W| sqrt(scaler_row) of one linear's [out, in] weights, from the dense statistics of its input. */
  static float[] wandaScores(Map<String, CalibrationStatistics> statistics, PlannedLinear planned, float[] weights) {
    float[] scaler = statistics.get(planned.statisticsKey()).scalerRow();
    return Wanda.scores(planned.tensorName(), Weights.of((int) planned.linear.outFeatures(), (int) planned.linear.inFeatures(), weights), scaler, 1);
  }
}
