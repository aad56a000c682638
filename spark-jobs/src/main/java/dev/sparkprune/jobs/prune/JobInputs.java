package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.prune.plan.PruneRules;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.text.TextSource;
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
 * the tokenizer, the calibration source and --seqlen against the model's context. All of it is
 * headers and small files, so the CLI opens it before starting Spark: a bad archive or option
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

  private JobInputs(
      ModelArchive archive, ModelLayout layout, List<PlannedLinear> plan, int prunableLinears, boolean needsCalibration,
      Optional<Tokenizer> tokenizer) {
    this.archive = archive;
    this.layout = layout;
    this.plan = List.copyOf(plan);
    this.prunableLinears = prunableLinears;
    this.needsCalibration = needsCalibration;
    this.tokenizer = tokenizer;
  }

  public static JobInputs open(HadoopFileIO io, PruneOptions options) throws IOException {
    ModelArchive archive = ModelArchive.open(io, options.model());
    ModelLayout layout = Architectures.layout(archive);
    List<PlannedLinear> plan = new ArrayList<>();
    for (Linear linear : layout.linears()) {
      ArchiveTensor tensor = archive.tensor(linear.tensorName());
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
    Optional<Tokenizer> tokenizer = Optional.empty();
    if (samplesText(options, needsCalibration)) {
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
    return new JobInputs(archive, layout, plan, prunable, needsCalibration, tokenizer);
  }

  /**
   * Whether the job embeds calibration windows: a global or LAMP allocation does for Wanda
   * scores; otherwise a calibrated method does unless --stats gives saved statistics.
   */
  private static boolean samplesText(PruneOptions options, boolean needsCalibration) {
    boolean global = options.allocation() == PruneOptions.Allocation.GLOBAL || options.allocation() == PruneOptions.Allocation.LAMP;
    if (global) {
      return options.method() == dev.sparkprune.scoring.methods.PruningMethod.WANDA;
    }
    return needsCalibration && options.statistics().isEmpty();
  }
}
