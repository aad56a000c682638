package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import java.util.Objects;
import java.util.Optional;

/**
 * The resolved settings of one {@code sparkprune shrink} run. {@code thenPrune} names the
 * unstructured or N:M pruning that follows on the shrunk model in the same run ("" for none).
 */
public record ShrinkOptions(
    String model, String out, String calibration, int nsamples, int seqlen, long seed, ShrinkSettings settings,
    String thenPrune, SparsityTarget thenTarget, int partitions, boolean overwrite) {
  public ShrinkOptions {
    Objects.requireNonNull(model, "model is null");
    Objects.requireNonNull(out, "out is null");
    Objects.requireNonNull(calibration, "calibration is null");
    Objects.requireNonNull(settings, "settings is null");
    Objects.requireNonNull(thenPrune, "thenPrune is null");
    Objects.requireNonNull(thenTarget, "thenTarget is null");
  }

  public Optional<PruningMethod> thenPruneMethod() {
    return thenPrune.isEmpty() ? Optional.empty() : Optional.of(PruningMethod.parse(thenPrune));
  }

  /** As prune options: for the output checks (the model and --calib are inputs) and for --then-prune. */
  PruneOptions asPruneOptions(String modelLocation, String outLocation, boolean overwriteOut) {
    return PruneOptions.builder()
        .model(modelLocation)
        .out(outLocation)
        .method(thenPruneMethod().orElse(PruningMethod.WANDA))
        .target(thenTarget)
        .calibration(calibration)
        .nsamples(nsamples)
        .seqlen(seqlen)
        .seed(seed)
        .partitions(partitions)
        .overwrite(overwriteOut)
        .build();
  }

  /** Calibration samples per chunk, as the prune job splits them (at most 16 chunks). */
  int chunkSize() {
    return (nsamples + 15) / 16;
  }
}
