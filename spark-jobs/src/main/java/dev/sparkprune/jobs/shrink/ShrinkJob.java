package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.calibration.ExpertSharding;
import dev.sparkprune.jobs.calibration.SparkExecutors;
import dev.sparkprune.jobs.gradient.GradientFiles;
import dev.sparkprune.jobs.gradient.GradientStage;
import dev.sparkprune.jobs.output.OutputGuard;
import dev.sparkprune.jobs.output.Publisher;
import dev.sparkprune.jobs.plan.CalibrationShape;
import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.jobs.plan.ExpertPlan;
import dev.sparkprune.jobs.plan.ExpertStatistics;
import dev.sparkprune.jobs.plan.PlanSettings;
import dev.sparkprune.jobs.plan.RunPlan;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.jobs.spark.StagedRun;
import dev.sparkprune.scoring.model.DecoderBackward;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.repair.RepairSettings;
import dev.sparkprune.scoring.structure.AttentionGroups;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.KeepCounts;
import dev.sparkprune.scoring.structure.ShrinkDecision;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.scoring.structure.TaylorImportance;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.quant.Quantization;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import scala.Tuple2;

/**
 * The shrink job's driver: checks the request against the config, samples calibration windows,
 * gathers small per-chunk summaries from the executors (depth scores, channel and head
 * statistics, expert saliency, weight norms), chooses what to remove, has one task per shard
 * write the shrunk archive, and publishes atomically. No weight or hidden state passes through
 * the driver. {@code --then-prune} runs these stages and then the prune job in one run
 * (ShrinkThenPrune, above both jobs).
 *
 * <p>Outputs under --out: {@code model/} (the shrunk archive) and {@code report.json}.
 */
public final class ShrinkJob {
  private final SparkSession spark;
  private final ShrinkOptions options;
  private final ProgressLog log;

  public ShrinkJob(SparkSession spark, ShrinkOptions options, PrintStream progress) {
    this.spark = spark;
    this.options = options;
    this.log = new ProgressLog(progress, "shrink");
  }

  /**
   * The opened and checked inputs of a run, with its calibration windows: {@link #check} makes
   * them once, before Spark starts (shrink then prune embeds the same windows).
   */
  public record Inputs(ModelArchive archive, ModelShape shape, Tokenizer tokenizer, CalibrationSource calibration) {}

  /**
   * Checks everything that needs no Spark: the model, the request (and --then-prune's pattern
   * against the shrunk widths), --out, the tokenizer and --seqlen; samples the calibration windows.
   */
  public static Inputs check(Configuration conf, ShrinkOptions options) throws IOException {
    return check(conf, options, java.util.Optional.empty(), 0);
  }

  /** As {@link #check(Configuration, ShrinkOptions)}, refusing before sampling what the executors cannot hold (its {@link RunPlan}). */
  public static Inputs check(Configuration conf, ShrinkOptions options, ExecutorShape executors, int defaultPartitions)
      throws IOException {
    return check(conf, options, java.util.Optional.of(executors), defaultPartitions);
  }

  private static Inputs check(Configuration conf, ShrinkOptions options, java.util.Optional<ExecutorShape> executors,
      int defaultPartitions) throws IOException {
    HadoopFileIO io = new HadoopFileIO(conf);
    ModelArchive archive = ModelArchive.open(io, options.model());
    ModelShape shape = ModelShape.of(archive.config());
    if (!options.budget().isSet()) {
      // A size budget's cuts are the search's, each checked as it is sized (BudgetSearch).
      options.settings().checkAgainst(shape);
    }
    checkPatternFits(options, shape);
    OutputGuard.check(conf, options.output());
    int maxPositions = Models.maxPositions(archive.config(), shape.modelType());
    ValidationException.check(
        options.seqlen() <= maxPositions,
        "Invalid --seqlen %d: the model supports at most %d positions (max_position_embeddings in config.json)",
        options.seqlen(), maxPositions);
    ValidationException.check(!options.settings().needsGradients() || DecoderBackward.supports(shape.modelType()),
        "Cannot use a taylor metric on %s: model_type '%s' has no backward pass for the gradients (supported: %s)",
        options.model(), shape.modelType(), String.join(", ", DecoderBackward.MODEL_TYPES));
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    Models.checkTokenizer(archive, tokenizer);
    ValidationException.check(options.budget().kind() != SizeTarget.Kind.ACTIVE_PARAMETERS || shape.experts() > 0,
        "Cannot use --target-active-params on %s: model_type '%s' has no routed experts, so every parameter is active; use --target-params",
        options.model(), shape.modelType());
    if (executors.isPresent()) {
      checkCalibrationMemory(archive, shape, options, executors.get(), defaultPartitions);
      if (options.budget().isSet()) {
        BudgetSearch.checkMemory(archive, shape, options, executors.get());
      }
    }
    CalibrationSource calibration = CalibrationSource.sample(io, options.calibrationSettings(), tokenizer);
    return new Inputs(archive, shape, tokenizer, calibration);
  }

  /**
   * --then-prune with an N:M pattern prunes the shrunk model: M must divide every width its
   * linears read (the hidden size, the kept attention width, the kept MLP channels, the experts'
   * widths), which the shrink settings fix before any statistics are gathered.
   */
  private static void checkPatternFits(ShrinkOptions options, ModelShape shape) {
    if (options.thenPrune().isEmpty() || !options.thenTarget().isStructured()) {
      return;
    }
    ShrinkSettings settings = options.settings();
    java.util.Map<String, Integer> widths = new java.util.LinkedHashMap<>();
    widths.put("the linears reading hidden states (hidden_size)", shape.hidden());
    int kvGroups = KeepCounts.kvGroups(shape.kvHeads(), settings.headsKeep());
    widths.put("o_proj after --heads-keep (kept heads x head_dim)", kvGroups * shape.headsPerGroup() * shape.headDim());
    if (shape.hasDenseMlp()) {
      widths.put("down_proj after --mlp-keep (kept MLP channels)", KeepCounts.mlpChannels(shape.intermediate(), settings.mlpKeep()));
    }
    shape.moe().ifPresent(moe -> {
      widths.put("the experts' down_proj (moe_intermediate_size)", moe.expertIntermediate());
      if (moe.hasSharedExpert()) {
        widths.put("the shared expert's down_proj (shared_expert_intermediate_size)", moe.sharedIntermediate());
      }
    });
    widths.forEach((what, width) -> ValidationException.check(width % options.thenTarget().groupSize() == 0,
        "Cannot use --then-prune with --pattern %s: M = %d does not divide %s, %d wide; choose a pattern whose M divides it",
        options.thenTarget(), options.thenTarget().groupSize(), what, width));
  }

  /**
   * Refuses, before sampling, a run the executors cannot hold: its {@link RunPlan} (the cached
   * calibration windows, the expert groups, the blocks held as float); {@code defaultPartitions}
   * is what the job uses when --partitions is not given. The expert plan applies only without
   * the repair: the repair's dense and shrunk streams still hold whole blocks.
   */
  private static void checkCalibrationMemory(ModelArchive archive, ModelShape shape, ShrinkOptions options,
      ExecutorShape executors, int defaultPartitions) {
    ModelLayout layout = Architectures.layout(archive);
    Optional<ExpertPlan> experts = Optional.empty();
    if (!options.repair()) {
      int partitions = options.partitions() > 0 ? options.partitions() : defaultPartitions;
      experts = Optional.of(expertPlan(archive, new CalibrationShape(options.nsamples(), options.seqlen(), partitions),
          options.expertTaskBytes(), executors));
    }
    RunPlan.shrink(archive, layout, options.model(), options.calibrationSettings(), executors, defaultPartitions, experts).checkFits();
  }

  /** As {@link #check(Configuration, ShrinkOptions, ExecutorShape, int)}, for a session already started: its executors. */
  public static Inputs check(SparkSession spark, ShrinkOptions options) throws IOException {
    return check(spark.sparkContext().hadoopConfiguration(), options,
        SparkExecutors.of(spark.sparkContext().master(), spark.sparkContext().getConf()), spark.sparkContext().defaultParallelism());
  }

  public ShrinkReport run() throws IOException {
    return run(check(spark, options));
  }

  /** Runs on inputs already opened and checked: the CLI checks them before it starts Spark. */
  public ShrinkReport run(Inputs inputs) throws IOException {
    if (!options.thenPrune().isEmpty()) {
      throw new IllegalStateException("Cannot prune in the shrink job: --then-prune runs through workflow.ShrinkThenPrune");
    }
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    return StagedRun.start(spark, "shrink", options.model()).publish(Publisher.preparer(conf, options.output()), log,
        run -> finish(run, shrinkInto(run, inputs, inputs.calibration(), "model")));
  }

  /** The run's progress log ("[shrink  12.3s] ..."). */
  public ProgressLog log() {
    return log;
  }

  /**
   * The shrink stages inside a run: statistics from the executors, the decision, and the shrunk
   * archive written by one task per shard into {@code folder} of the staging folder.
   */
  public ShrinkReport shrinkInto(StagedRun run, Inputs inputs, CalibrationSource calibration, String folder) throws IOException {
    HadoopFileIO io = new HadoopFileIO(spark.sparkContext().hadoopConfiguration());
    ModelArchive archive = inputs.archive();
    JobStages stages = run.stages(archive.location(), Optional.empty());

    // FP8 archives store o_proj and down_proj as block-scaled codes: a refit would have to be
    // re-quantized, which the repair does not do yet. MXFP4 quantizes experts only (never refitted).
    boolean repair = options.repair() && archive.quantization().method() != Quantization.Method.FP8;
    if (options.repair() && !repair) {
      log.line("repair: skipped, %s stores the refitted linears as FP8 blocks (shrink a BF16 copy to repair)", archive.location());
    }
    Decided decided = decide(stages, inputs, calibration, repair);
    ShrinkDecision decision = decided.decision();
    double calibrated = log.seconds();
    ShrunkArchive shrunk = new ShrunkArchive(archive, decision.plan());
    ShrinkReport report = new ShrinkReport(options.withSettings(decided.settings()), decision, archive.totalParameters(), shrunk.parameters(),
        repair);
    decided.budget().ifPresent(report::budget);
    report.stage("statistics", calibrated);
    log.line("decided: drop blocks %s, keep %d MLP channels, %d of %d KV groups, %d experts per block (%.1f s)",
        decision.droppedBlocks(), decision.plan().intermediate(), decision.plan().kvHeads(), inputs.shape().kvHeads(),
        decision.plan().experts(), calibrated);

    RepairFunctions.StagedRefits refits = new RepairFunctions.StagedRefits(stages.context(), "", Set.of());
    String work = io.resolve(run.staging(), "_repair");
    if (repair) {
      // The shrunk stream runs on the unrepaired archive, staged apart and removed before publishing.
      String unrepaired = io.resolve(work, "unrepaired");
      writeArchive(stages, io, shrunk, unrepaired, refits);
      ShrinkRepair.Outcome outcome = ShrinkRepair.run(
          stages, calibration, decision.plan(), RepairSettings.DEFAULTS, unrepaired, io.resolve(work, "refits"), log);
      refits = outcome.replacements();
      report.repair(outcome.refits());
      report.stage("repair", log.seconds());
      log.line("repaired: %d linear(s) refitted (%.1f s)", outcome.refits().size(), log.seconds());
    }

    writeArchive(stages, io, shrunk, io.resolve(run.staging(), folder), refits);
    if (repair) {
      Path workPath = new Path(work);
      workPath.getFileSystem(spark.sparkContext().hadoopConfiguration()).delete(workPath, true);
    }
    report.stage("write", log.seconds());
    log.line("wrote the shrunk archive: %,d -> %,d parameters in %d shard(s) (%.1f s)",
        archive.totalParameters(), shrunk.parameters(), shrunk.shards().size(), log.seconds());
    return report;
  }

  /** The run's last step before publishing: the total time, and report.json in the staging folder. */
  public ShrinkReport finish(StagedRun run, ShrinkReport report) throws IOException {
    HadoopFileIO io = new HadoopFileIO(spark.sparkContext().hadoopConfiguration());
    report.stage("total", log.seconds());
    report.write(io, io.resolve(run.staging(), "report.json"));
    return report;
  }

  /**
   * Summaries from the executors, folded in chunk order on the driver, and the choice made from
   * them. The chunks are the calibration source's, as prune's; each partition runs its chunks
   * through the dense model block-major (StructureCalibration), not through the calibration
   * pass: the depth scores compare a chunk's input at block l with its input at block l + n,
   * and the summaries fold in chunk order (see ARCHITECTURE.md). When the expert plan shards a
   * MoE block, the chunks run through the calibration pass instead, that block expert-parallel
   * ({@link ExpertParallelSummaries}): the same summaries, bit for bit.
   */
  private Decided decide(JobStages stages, Inputs inputs, CalibrationSource calibration, boolean repair) throws IOException {
    ModelShape shape = inputs.shape();
    JavaSparkContext jsc = stages.jsc();
    // A size budget's depth scores cover every drop its grid searches.
    int maxDrop = options.budget().isSet() ? BudgetSearch.maxDrop(inputs.archive(), shape, options.budget()) : options.settings().maxSpan();
    List<ChunkSummary> summaries = new ArrayList<>();
    ExpertSharding sharding = sharding(jsc, inputs.archive(), calibration);
    if (!sharding.blocks().isEmpty()) {
      // MoE blocks whose experts exceed --expert-task-mb: the calibration pass, those blocks expert-parallel.
      summaries.addAll(ExpertParallelSummaries.collect(stages, calibration, shape, sharding, maxDrop, log));
    } else {
      List<Tuple2<Integer, int[][]>> chunks = calibration.chunks();
      int partitions = calibration.partitions(jsc);
      calibration.logChunks(log, chunks.size(), partitions);
      List<byte[]> collected = jsc.parallelize(chunks, partitions)
          .mapPartitions(new ShrinkFunctions.CollectSummaries(stages.context(), maxDrop))
          .collect();
      for (byte[] bytes : collected) {
        summaries.add(ShrinkFunctions.deserialize(bytes));
      }
    }
    ChunkSummary summary = ChunkSummary.foldInOrder(summaries);
    if (options.budget().isSet()) {
      BudgetSearch.Outcome outcome = BudgetSearch.run(stages, inputs, calibration, summary, options, maxDrop, repair, log);
      ShrinkSettings chosen = outcome.winner().score().candidate().settings(options.settings());
      return new Decided(ShrinkDecision.choose(shape, chosen, summary), chosen, Optional.of(outcome));
    }
    TaylorImportance taylor = options.settings().needsGradients() ? taylorImportance(stages, inputs, calibration) : TaylorImportance.NONE;
    return new Decided(ShrinkDecision.choose(shape, options.settings(), summary, taylor), options.settings(), Optional.empty());
  }

  /** The decision, the cut it made (the request's, or the size budget's choice) and the budget's search. */
  private record Decided(ShrinkDecision decision, ShrinkSettings settings, Optional<BudgetSearch.Outcome> budget) {}

  /**
   * The MoE blocks whose experts, with their saliency sums, make more than one group under
   * --expert-task-mb ({@link ExpertPlan}): none unless a block's experts exceed the budget.
   */
  private ExpertSharding sharding(JavaSparkContext jsc, ModelArchive archive, CalibrationSource calibration) {
    CalibrationShape shape = new CalibrationShape(calibration.size(), calibration.settings().seqlen(), calibration.partitions(jsc));
    return ExpertSharding.of(expertPlan(archive, shape, options.expertTaskBytes(), SparkExecutors.of(jsc)));
  }

  /**
   * Shrink's expert plan, the same before Spark (to refuse) and in the job (to shard): routed
   * tokens only, and each expert's saliency sums as its statistics.
   */
  private static ExpertPlan expertPlan(ModelArchive archive, CalibrationShape calibration, long expertTaskBytes, ExecutorShape executors) {
    PlanSettings settings = new PlanSettings(calibration, ExpertStatistics.SALIENCY, InputHook.ExpertInputs.ROUTED, expertTaskBytes, executors);
    return ExpertPlan.of(Architectures.layout(archive), archive.config(), settings);
  }

  /**
   * --width-metric taylor or --layer-metric taylor: the dense model's gradient set over the same
   * calibration chunks (the distributed backward pass, written to a private folder of the staging
   * area and dropped after), which gives each block's removal importance; for the width metric,
   * one task per block turning its linears' mean gradients into channel and KV group scores.
   * Only those vectors reach the driver.
   */
  private TaylorImportance taylorImportance(JobStages stages, Inputs inputs, CalibrationSource calibration) throws IOException {
    HadoopFileIO io = stages.context().io();
    String directory = io.resolve(stages.context().staging(), "_gradients");
    ModelLayout layout = Architectures.layout(inputs.archive());
    // A private set, dropped before publishing: nothing reuses it, so it needs no model fingerprint.
    double[] blockRemoval = GradientStage.compute(stages, calibration, layout, directory, "", log).blockImportance();
    ModelShape shape = inputs.shape();
    ShrinkSettings settings = options.settings();
    if (settings.widthMetric() != ShrinkSettings.WidthMetric.TAYLOR || settings.mlpKeep() == 1 && settings.headsKeep() == 1) {
      GradientFiles.deleteRecursively(io, directory);
      return TaylorImportance.NONE.withBlockRemoval(blockRemoval);
    }
    List<Integer> blocks = new ArrayList<>();
    for (int b = 0; b < shape.blocks(); b++) {
      blocks.add(b);
    }
    stages.describe("taylor scores");
    List<TaylorImportance.Block> scores = new ArrayList<>();
    for (byte[] bytes : stages.jsc().parallelize(blocks, Math.max(1, Math.min(blocks.size(), stages.jsc().defaultParallelism())))
        .map(new ShrinkFunctions.TaylorBlock(stages.context(), directory,
            new AttentionGroups(shape.heads(), shape.kvHeads(), shape.headDim())))
        .collect()) {
      scores.add(ShrinkFunctions.deserialize(bytes, TaylorImportance.Block.class));
    }
    GradientFiles.deleteRecursively(io, directory);
    log.line("taylor: scored the MLP channels and KV groups of %d blocks from the gradients", scores.size());
    return TaylorImportance.of(scores).withBlockRemoval(blockRemoval);
  }

  /** One task per output shard; config, index and tokenizer files from the driver (small). */
  private static void writeArchive(
      JobStages stages, HadoopFileIO io, ShrunkArchive shrunk, String directory, RepairFunctions.StagedRefits refits) throws IOException {
    List<String> shards = shrunk.shards();
    stages.jsc().parallelize(shards, shards.size())
        .map(new ShrinkFunctions.WriteShard(stages.context(), shrunk.plan(), directory, refits)).collect();
    for (Map.Entry<String, byte[]> file : shrunk.smallFiles().entrySet()) {
      try (OutputStream out = io.newOutputFile(io.resolve(directory, file.getKey())).create()) {
        out.write(file.getValue());
      }
    }
  }
}
