package dev.sparkprune.jobs.prune;

import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.arch.Linear;
import java.util.List;
import java.util.Map;

/**
 * Adds each input group's rows to the chunk's statistics of that group; a routed expert's
 * groups get their routed rows (or every row), and a statistics entry even when no row came,
 * so every expert has statistics and its token count.
 */
final class StatisticsHook implements InputHook {
  private final Map<String, CalibrationStatistics> statistics;
  private final int block;
  private final CalibrationStatistics.HessianStorage storage;
  private final InputHook.ExpertInputs expertInputs;
  private final ComputeBackend backend;

  StatisticsHook(
      Map<String, CalibrationStatistics> statistics, int block, CalibrationStatistics.HessianStorage storage,
      InputHook.ExpertInputs expertInputs, ComputeBackend backend) {
    this.statistics = statistics;
    this.block = block;
    this.storage = storage;
    this.expertInputs = expertInputs;
    this.backend = backend;
  }

  @Override
  public void accept(List<Linear> linears, float[] input, int tokens, int sequences) {
    Linear first = linears.get(0);
    statistics
        .computeIfAbsent(
            PlannedLinear.statisticsKey(block, first.inputGroup()), key -> CalibrationStatistics.create((int) first.inFeatures(), storage))
        .add(input, 0, tokens, sequences, backend.linearAlgebra());
  }

  @Override
  public InputHook.ExpertInputs expertInputs() {
    return expertInputs;
  }
}
