package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.scoring.model.InputHook;
import java.util.Objects;
import java.util.Optional;

/**
 * Where the scoring stage's calibration statistics come from and where they go: sequential
 * (block b on the model pruned up to b - 1) or one-shot (the dense model), which tokens a
 * routed expert's statistics see, statistics saved by an earlier run to load instead ("" for
 * none), and whether to save this run's dense ones.
 */
public record StatisticsSettings(boolean sequential, InputHook.ExpertInputs expertInputs, String saved, boolean save) {
  public StatisticsSettings {
    Objects.requireNonNull(expertInputs, "expertInputs is null");
    Objects.requireNonNull(saved, "saved is null");
  }

  /** The folder of saved statistics to load, if any. */
  public Optional<String> load() {
    return saved.isEmpty() ? Optional.empty() : Optional.of(saved);
  }
}
