package dev.sparkprune.jobs.gradient;

import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.grad.GradientStatistics;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.Serializable;
import java.util.Objects;
import java.util.Optional;

/**
 * Where a run's tasks read each linear's gradient statistic: the folder of a gradient set (this
 * run's, or one saved earlier) and the norm the methods score with. Small and serializable: the
 * statistics themselves never pass through the driver.
 */
public record GradientSource(String directory, GradientNorm norm) implements Serializable {
  /** No gradients: the run's methods need none. */
  public static final GradientSource NONE = new GradientSource("", GradientNorm.L2);

  public GradientSource {
    Objects.requireNonNull(directory, "directory is null");
    Objects.requireNonNull(norm, "norm is null");
  }

  public boolean isPresent() {
    return !directory.isEmpty();
  }

  /** The folded statistics of one linear. */
  public GradientStatistics statistics(HadoopFileIO io, Linear linear) throws IOException {
    if (!isPresent()) {
      throw new IllegalStateException("Cannot read gradients of " + linear.tensorName() + ": the run computed none");
    }
    return GradientFiles.read(io, directory, linear);
  }

  /** G of one linear in the norm the methods score with, shaped like its [out, in] weight. */
  public Weights gradient(HadoopFileIO io, Linear linear) throws IOException {
    return Weights.of((int) linear.outFeatures(), (int) linear.inFeatures(), norm.of(statistics(io, linear)));
  }

  /** The folder, when there is one. */
  public Optional<String> location() {
    return isPresent() ? Optional.of(directory) : Optional.empty();
  }
}
