package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.plan.CalibrationSettings;
import dev.sparkprune.jobs.output.OutputRequest;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import java.util.Objects;
import java.util.Optional;

/**
 * The resolved settings of one {@code sparkprune shrink} run. {@code thenPrune} names the
 * unstructured or N:M pruning that follows on the shrunk model in the same run ("" for none);
 * {@code repair} whether the kept blocks are refitted by least squares ({@code --repair ls});
 * {@code expertTaskBytes} the --expert-task-mb budget of an expert-parallel MoE block's expert
 * tasks in bytes (0: a quarter of a task's heap; see {@code ExpertPlan});
 * {@code budget} a size budget whose search chooses the cut ({@link SizeTarget#NONE}: {@code settings} is the cut).
 */
public record ShrinkOptions(
    String model, String out, String calibration, int nsamples, int seqlen, long seed, ShrinkSettings settings,
    String thenPrune, SparsityTarget thenTarget, int partitions, boolean overwrite, boolean repair, long expertTaskBytes,
    SizeTarget budget) {
  public ShrinkOptions {
    Objects.requireNonNull(model, "model is null");
    Objects.requireNonNull(out, "out is null");
    Objects.requireNonNull(calibration, "calibration is null");
    Objects.requireNonNull(settings, "settings is null");
    Objects.requireNonNull(thenPrune, "thenPrune is null");
    Objects.requireNonNull(thenTarget, "thenTarget is null");
    Objects.requireNonNull(budget, "budget is null");
    if (expertTaskBytes < 0) {
      throw new IllegalArgumentException("Invalid expert task budget: " + expertTaskBytes);
    }
  }

  /** Without a size budget (the cut is {@code settings}) and without an --expert-task-mb budget (derived from the executors' memory). */
  public ShrinkOptions(
      String model, String out, String calibration, int nsamples, int seqlen, long seed, ShrinkSettings settings,
      String thenPrune, SparsityTarget thenTarget, int partitions, boolean overwrite, boolean repair) {
    this(model, out, calibration, nsamples, seqlen, seed, settings, thenPrune, thenTarget, partitions, overwrite, repair, 0, SizeTarget.NONE);
  }

  /** The same run with another cut: the size budget's choice. */
  public ShrinkOptions withSettings(ShrinkSettings chosen) {
    return new ShrinkOptions(model, out, calibration, nsamples, seqlen, seed, chosen, thenPrune, thenTarget, partitions, overwrite, repair,
        expertTaskBytes, budget);
  }

  public Optional<PruningMethod> thenPruneMethod() {
    return thenPrune.isEmpty() ? Optional.empty() : Optional.of(PruningMethod.parse(thenPrune));
  }

  /** The output folder and the inputs it must keep clear of: --model and --calib. */
  public OutputRequest output() {
    java.util.Map<String, String> inputs = new java.util.LinkedHashMap<>();
    inputs.put("--model", model);
    inputs.put("--calib", calibration);
    return new OutputRequest(out, overwrite, inputs);
  }

  /** Where the calibration windows come from and how many (chunked as every job chunks them: CalibrationSource). */
  public CalibrationSettings calibrationSettings() {
    return new CalibrationSettings(calibration, nsamples, seqlen, seed, partitions);
  }
}
