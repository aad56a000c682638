package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.jobs.gradient.GradientNorm;
import java.util.Objects;
import java.util.Optional;

/**
 * Where the gradient methods' statistics come from and go: the norm they score with, a gradient
 * set saved by an earlier run to reuse ("" for none: the run computes its own from the dense
 * model before any pruning), and whether to publish this run's set under {@code <out>/grads}.
 */
public record GradientSettings(GradientNorm norm, String saved, boolean save) {
  /** The folder a run's own gradient set is published as, when saved. */
  public static final String SAVED_FOLDER = "grads";
  /** The run's own gradient set when it is not saved: dropped before publishing. */
  static final String PRIVATE_FOLDER = "_gradients";

  public GradientSettings {
    Objects.requireNonNull(norm, "norm is null");
    Objects.requireNonNull(saved, "saved is null");
  }

  /** No gradient method, or its defaults. */
  public static GradientSettings defaults() {
    return new GradientSettings(GradientNorm.L2, "", false);
  }

  /** The saved set to reuse, if any. */
  public Optional<String> load() {
    return saved.isEmpty() ? Optional.empty() : Optional.of(saved);
  }
}
