package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.scoring.model.InputHook;
import java.util.Objects;
import java.util.Optional;

/**
 * Where the scoring stage's calibration statistics come from and where they go: sequential
 * (block b on the model pruned up to b - 1) or one-shot (the dense model), which tokens a
 * routed expert's statistics see, statistics saved by an earlier run to load instead ("" for
 * none), whether to save this run's dense ones, and the budget of an expert task of an
 * expert-parallel MoE block (--expert-task-mb in bytes; 0: derived from executor memory).
 */
public record StatisticsSettings(boolean sequential, InputHook.ExpertInputs expertInputs, String saved, boolean save, long expertTaskBytes) {
  public StatisticsSettings {
    Objects.requireNonNull(expertInputs, "expertInputs is null");
    Objects.requireNonNull(saved, "saved is null");
  }

  /** Without an expert-task budget: derived from executor memory. */
  public StatisticsSettings(boolean sequential, InputHook.ExpertInputs expertInputs, String saved, boolean save) {
    this(sequential, expertInputs, saved, save, 0);
  }

  /** The folder of saved statistics to load, if any. */
  public Optional<String> load() {
    return saved.isEmpty() ? Optional.empty() : Optional.of(saved);
  }
}
