package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.gradient.GradientManifest;
import dev.sparkprune.jobs.prune.plan.Fingerprints;
import dev.sparkprune.jobs.plan.CalibrationShape;
import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.jobs.plan.ExpertPlan;
import dev.sparkprune.jobs.plan.ExpertStatistics;
import dev.sparkprune.jobs.plan.PlanSettings;
import dev.sparkprune.jobs.plan.RunPlan;
import dev.sparkprune.jobs.plan.MemoryPlan;
import dev.sparkprune.jobs.prune.plan.PruneRules;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.prune.score.StatisticsFiles;
import dev.sparkprune.jobs.text.TextSource;
import dev.sparkprune.scoring.model.DecoderBackward;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What the prune job's driver reads and checks before any Spark work: the archive's config,
 * headers and layout, the plan with the per-layer rules, and, when the run calibrates on text,
 * the tokenizer, the calibration source and --seqlen against the model's context, the sampled
 * calibration windows (text tokenized, or pre-tokenized rows checked against the vocabulary),
 * and saved statistics ({@code --stats}) against the model. All of it is headers, small files
 * and the driver's token ids, so the CLI opens it before starting Spark: a bad archive or option
 * fails in the seconds {@code inspect} takes, and nothing found here can fail inside a task.
 */
public final class JobInputs {
  public final ModelArchive archive;
  public final ModelLayout layout;
  /** The linears to prune, after the --config rules. */
  public final List<PlannedLinear> plan;
  /** How many linears the architecture has, before the rules skipped some. */
  public final int prunableLinears;
  /** Some planned linear's method scores calibration activations. */
  public final boolean needsCalibration;
  /** The archive's tokenizer, when the run samples calibration windows from text. */
  public final Optional<Tokenizer> tokenizer;
  /** The calibration windows (nsamples x seqlen token ids), sampled once before Spark starts; none when the run samples none. */
  public final CalibrationSource calibration;

  private JobInputs(
      ModelArchive archive, ModelLayout layout, List<PlannedLinear> plan, int prunableLinears, boolean needsCalibration,
      Optional<Tokenizer> tokenizer, CalibrationSource calibration) {
    this.archive = archive;
    this.layout = layout;
    this.plan = List.copyOf(plan);
    this.prunableLinears = prunableLinears;
    this.needsCalibration = needsCalibration;
    this.tokenizer = tokenizer;
    this.calibration = calibration;
  }

  /** Opens and checks the inputs without a memory check: for callers that calibrate in this JVM's own terms (tests). */
  public static JobInputs open(HadoopFileIO io, PruneOptions options) throws IOException {
    return open(io, options, Optional.empty(), 0);
  }

  /**
   * Opens and checks the inputs; before sampling, refuses a run the executors cannot hold (its
   * {@link RunPlan}: calibration cache, expert groups, blocks, scoring). {@code defaultPartitions}:
   * the calibration partitions when --partitions is not given.
   */
  public static JobInputs open(HadoopFileIO io, PruneOptions options, ExecutorShape executor, int defaultPartitions) throws IOException {
    return open(io, options, Optional.of(executor), defaultPartitions);
  }

  /**
   * The run plan of {@code options} from headers alone (no tokenizer, no sampling): what a batch
   * checks for every row before any model runs. The same plan {@link #open(HadoopFileIO,
   * PruneOptions, ExecutorShape, int)} checks.
   */
  public static RunPlan plan(HadoopFileIO io, PruneOptions options, ExecutorShape executor, int defaultPartitions) throws IOException {
    Planned planned = planned(io, options);
    return planned.runPlan(options, executor, defaultPartitions);
  }

  /** The archive, layout and planned linears: the part of the inputs a plan reads. */
  private record Planned(ModelArchive archive, ModelLayout layout, List<PlannedLinear> plan, int prunable, boolean needsCalibration,
      boolean needsGradients, boolean samplesText) {
    RunPlan runPlan(PruneOptions options, ExecutorShape executor, int defaultPartitions) {
      Optional<RunPlan.Cache> cache = samplesText
          ? Optional.of(RunPlan.cache(archive, layout, options.calibrationSettings(), defaultPartitions))
          : Optional.empty();
      // Saved statistics (--stats) skip calibration, and with it the expert tasks.
      Optional<ExpertPlan> experts = needsCalibration && options.statistics().isEmpty()
          ? Optional.of(expertPlan(archive, layout, plan, options, executor, options.partitions()))
          : Optional.empty();
      return RunPlan.prune("Cannot prune " + options.model(), executor, cache, experts,
          MemoryPlan.of(archive, layout, options.memorySettings(), executor));
    }
  }

  private static Planned planned(HadoopFileIO io, PruneOptions options) throws IOException {
    ModelArchive archive = ModelArchive.open(io, options.model());
    ModelLayout layout = Architectures.layout(archive);
    List<PlannedLinear> plan = new ArrayList<>();
    for (Linear linear : layout.linears()) {
      ArchiveTensor tensor = archive.tensor(linear.storedTensorName());
      plan.add(new PlannedLinear(linear, tensor, archive.quantization(), options.method(), options.target()));
    }
    int prunable = plan.size();
    if (options.config().isPresent()) {
      plan = PruneRules.load(io, options.config().get()).apply(plan);
    }
    // ADMM and DSnoT work from calibration statistics whatever method chose the mask.
    boolean needsCalibration = options.scoring().needsCalibration(plan);
    ValidationException.check(
        !needsCalibration || options.calibration().isPresent() || options.statistics().isPresent(),
        "Missing --calib: some linears are pruned with a method that scores calibration activations");
    boolean needsGradients = options.scoring().needsGradients(plan);
    return new Planned(archive, layout, plan, prunable, needsCalibration, needsGradients,
        samplesText(options, needsCalibration, needsGradients));
  }

  private static JobInputs open(HadoopFileIO io, PruneOptions options, Optional<ExecutorShape> executor, int defaultPartitions)
      throws IOException {
    Planned planned = planned(io, options);
    ModelArchive archive = planned.archive();
    ModelLayout layout = planned.layout();
    List<PlannedLinear> plan = planned.plan();
    boolean needsCalibration = planned.needsCalibration();
    if (planned.needsGradients()) {
      checkGradients(io, options, archive, layout, plan);
    }
    Optional<Tokenizer> tokenizer = Optional.empty();
    if (planned.samplesText()) {
      ValidationException.check(
          options.calibration().isPresent(), "Missing --calib: --allocation %s with --method wanda scores calibration activations",
          options.allocation().name().toLowerCase(java.util.Locale.ROOT));
      int maxPositions = Models.maxPositions(archive.config(), layout.modelType());
      ValidationException.check(
          options.seqlen() <= maxPositions,
          "Invalid --seqlen %d: the model supports at most %d positions (max_position_embeddings in config.json)",
          options.seqlen(), maxPositions);
      tokenizer = Optional.of(TokenizerLoader.load(archive));
      Models.checkTokenizer(archive, tokenizer.get());
      String calibration = options.calibration().get();
      long rows = TextSource.check(io, calibration).tokenRows().orElse(Long.MAX_VALUE);
      ValidationException.check(
          rows >= options.nsamples(), "Cannot calibrate on %s: it has %d input_ids rows, fewer than --nsamples %d", calibration, rows,
          options.nsamples());
    }
    // Saved statistics are checked against this model and what the plan needs before any work.
    if (needsCalibration && options.statistics().isPresent()) {
      StatisticsFiles.checkManifest(io, options.statistics().get(), Fingerprints.model(archive), options.scoring().hessianUser(plan));
    }
    // The run plan from headers and the executor's shape: a run that cannot fit is refused now, before sampling, not by an OOM.
    if (executor.isPresent()) {
      planned.runPlan(options, executor.get(), defaultPartitions).checkFits();
    }
    CalibrationSource calibration = tokenizer.isPresent()
        ? CalibrationSource.sample(io, options.calibrationSettings(), tokenizer.get())
        : CalibrationSource.none();
    return new JobInputs(archive, layout, plan, planned.prunable(), needsCalibration, tokenizer, calibration);
  }

  /**
   * The calibration's expert plan for {@code options} on {@code executor}, over {@code partitions}
   * calibration partitions (0: one per executor core): which MoE blocks run expert-parallel and
   * what each stage holds per task.
   */
  public ExpertPlan expertPlan(PruneOptions options, ExecutorShape executor, int partitions) {
    return expertPlan(archive, layout, plan, options, executor, partitions);
  }

  private static ExpertPlan expertPlan(ModelArchive archive, ModelLayout layout, List<PlannedLinear> plan, PruneOptions options,
      ExecutorShape executor, int partitions) {
    CalibrationShape shape = new CalibrationShape(options.nsamples(), options.seqlen(), partitions > 0 ? partitions : executor.cores());
    PlanSettings settings = new PlanSettings(shape, ExpertStatistics.of(options.scoring().hessianStorage(plan)), options.moeCalibration(),
        options.expertTaskBytes(), executor);
    return ExpertPlan.of(layout, archive.config(), settings);
  }

  /**
   * Whether the job embeds calibration windows: a global or LAMP allocation does for Wanda
   * scores, OWL for its outlier ratios; otherwise a calibrated method does unless --stats gives
   * saved statistics, and a gradient method does for its backward pass unless --grads gives a
   * saved gradient set.
   */
  private static boolean samplesText(PruneOptions options, boolean needsCalibration, boolean needsGradients) {
    boolean global = options.allocation() == PruneOptions.Allocation.GLOBAL || options.allocation() == PruneOptions.Allocation.LAMP;
    if (global) {
      return options.method() == dev.sparkprune.scoring.methods.PruningMethod.WANDA;
    }
    return options.allocation() == PruneOptions.Allocation.OWL
        || needsCalibration && options.statistics().isEmpty()
        || needsGradients && options.gradients().isEmpty();
  }

  /**
   * The plan's gradient methods can get their gradients: a saved set of this model, loss and
   * scale holding every linear they prune (--grads, its manifest read here), or a backward pass
   * of this model type over --calib. Saved forward statistics (--stats) hold no gradients.
   */
  private static void checkGradients(HadoopFileIO io, PruneOptions options, ModelArchive archive, ModelLayout layout,
      List<PlannedLinear> plan) throws IOException {
    java.util.TreeSet<String> methods = new java.util.TreeSet<>();
    List<String> tensors = new ArrayList<>();
    for (PlannedLinear planned : plan) {
      if (planned.method.needsGradient()) {
        methods.add(planned.method.displayName());
        tensors.add(planned.tensorName());
      }
    }
    String named = String.join(" and ", methods);
    if (options.gradients().isPresent()) {
      GradientManifest.check(io, options.gradients().get(), "--grads", Fingerprints.model(archive), tensors);
      return;
    }
    ValidationException.check(options.statistics().isEmpty(),
        "Cannot use --stats %s alone: some linears are pruned with %s, and statistics saved by --save-stats come from a forward-only run"
            + " and hold no gradients; add --grads URI (saved by --save-grads), or calibrate with --calib instead",
        options.statistics().orElse(""), named);
    ValidationException.check(options.calibration().isPresent(),
        "Missing --calib: some linears are pruned with %s, whose gradients come from a backward pass over calibration text (or give --grads)",
        named);
    checkBackward(layout.modelType(), named);
  }

  /**
   * A gradient method needs the model type's backward pass. Every type sparkprune loads has one
   * today; the check keeps a family added later from failing inside the tasks.
   */
  static void checkBackward(String modelType, String methods) {
    ValidationException.check(DecoderBackward.supports(modelType),
        "Cannot prune with %s: model_type '%s' has no backward pass for the gradients (supported: %s)", methods, modelType,
        String.join(", ", DecoderBackward.MODEL_TYPES));
  }
}
