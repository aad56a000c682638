package dev.sparkprune.jobs.plan;

import dev.sparkprune.scoring.model.InputHook;
import java.util.Objects;

/**
 * What a run asks of each MoE block, for {@link ExpertPlan}: the calibration batch, what it keeps
 * per expert, which rows an expert's statistics see, the --expert-task-mb budget in bytes (0:
 * derived from the executor, a quarter of a task's share of its heap) and the executor.
 */
public record PlanSettings(
    CalibrationShape calibration, ExpertStatistics statistics, InputHook.ExpertInputs inputs, long expertTaskBytes,
    ExecutorShape executor) {
  /** The derived budget's share of a task's heap: the rest holds states, the fold's partials and the JVM. */
  public static final int AUTO_BUDGET_SHARE = 4;

  public PlanSettings {
    Objects.requireNonNull(calibration, "calibration is null");
    Objects.requireNonNull(statistics, "statistics is null");
    Objects.requireNonNull(inputs, "inputs is null");
    Objects.requireNonNull(executor, "executor is null");
    if (expertTaskBytes < 0) {
      throw new IllegalArgumentException("Invalid expert task budget: " + expertTaskBytes);
    }
  }

  /** The budget an expert group's bytes may reach: the one given, or a quarter of a task's heap. */
  public long budget() {
    return expertTaskBytes > 0 ? expertTaskBytes : Math.max(1, executor.taskBytes() / AUTO_BUDGET_SHARE);
  }
}
