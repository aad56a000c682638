package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.jobs.calibration.BlockPartials;
import dev.sparkprune.jobs.calibration.CalibrationPass;
import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.calibration.ExpertSharding;
import dev.sparkprune.jobs.plan.CalibrationShape;
import dev.sparkprune.jobs.plan.ExpertPlan;
import dev.sparkprune.jobs.plan.ExpertStatistics;
import dev.sparkprune.jobs.plan.PlanSettings;
import dev.sparkprune.jobs.calibration.LinearInputStatistics;
import dev.sparkprune.jobs.calibration.SparkExecutors;
import dev.sparkprune.jobs.gradient.GradientFiles;
import dev.sparkprune.jobs.gradient.GradientManifest;
import dev.sparkprune.jobs.gradient.GradientSource;
import dev.sparkprune.jobs.gradient.GradientStage;
import dev.sparkprune.jobs.prune.output.LinearResult;
import dev.sparkprune.jobs.prune.output.PruneReport;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.storage.StorageLevel;

/**
 * The prune job's scoring unit, what an allocation drives: for a plan whose targets are set, the
 * statistics come from none (magnitude), saved statistics (--stats), or the calibration pass,
 * sequential (block b's statistics from the model with blocks before it pruned) or one-shot (all
 * from the dense model, then every linear scored in one stage); {@link Scoring} runs the tasks.
 * Gradient methods (GBLM, Pruner-Zero) first get the dense model's gradient set, once, before
 * any pruning: a saved one (--grads), or the distributed backward pass over the calibration
 * source ({@link GradientStage}). It reads only what it is given: the scoring tasks, the
 * calibration source, the statistics and gradient settings, the model's fingerprint (for saved
 * statistics and gradients) and layout, and the run's report and log.
 */
public final class CalibratedScoring {
  private final Scoring scoring;
  private final CalibrationSource calibration;
  private final StatisticsSettings statistics;
  private final GradientSettings gradients;
  private final String modelFingerprint;
  private final ModelLayout layout;
  private final ModelConfig config;
  private final PruneReport.Builder report;
  private final ProgressLog log;

  public CalibratedScoring(
      Scoring scoring, CalibrationSource calibration, StatisticsSettings statistics, GradientSettings gradients, String modelFingerprint,
      ModelLayout layout, ModelConfig config, PruneReport.Builder report, ProgressLog log) {
    this.scoring = Objects.requireNonNull(scoring, "scoring is null");
    this.calibration = Objects.requireNonNull(calibration, "calibration is null");
    this.statistics = Objects.requireNonNull(statistics, "statistics is null");
    this.gradients = Objects.requireNonNull(gradients, "gradients is null");
    this.modelFingerprint = Objects.requireNonNull(modelFingerprint, "modelFingerprint is null");
    this.layout = Objects.requireNonNull(layout, "layout is null");
    this.config = Objects.requireNonNull(config, "config is null");
    this.report = Objects.requireNonNull(report, "report is null");
    this.log = Objects.requireNonNull(log, "log is null");
  }

  /** Prunes the plan's linears at their planned targets; the driver's summaries. */
  public List<LinearResult> prune(List<PlannedLinear> plan) throws IOException {
    GradientSource source = gradients(plan);
    List<LinearResult> results = prune(plan, scoring.withGradients(source));
    if (source.isPresent() && !gradients.save() && gradients.load().isEmpty()) {
      // The run's own set, not asked for: no part of the output.
      GradientFiles.deleteRecursively(stages().context().io(), source.directory());
    }
    return results;
  }

  /**
   * The dense model's gradient set when some planned method scores with it: the saved one, or
   * this run's, computed now (before any block is pruned) into the staging folder.
   */
  private GradientSource gradients(List<PlannedLinear> plan) throws IOException {
    if (!scoring.settings().needsGradients(plan)) {
      return GradientSource.NONE;
    }
    HadoopFileIO io = stages().context().io();
    long start = System.nanoTime();
    GradientManifest manifest;
    String directory;
    if (gradients.load().isPresent()) {
      directory = gradients.load().get();
      List<String> needed = new ArrayList<>();
      plan.stream().filter(planned -> planned.method.needsGradient()).forEach(planned -> needed.add(planned.tensorName()));
      manifest = GradientManifest.check(io, directory, "--grads", modelFingerprint, needed);
      log.line("gradients: reusing the gradient set in %s (%d samples)", directory, manifest.samples());
    } else {
      directory = io.resolve(stages().context().staging(), gradients.save() ? GradientSettings.SAVED_FOLDER : GradientSettings.PRIVATE_FOLDER);
      manifest = GradientStage.compute(stages(), calibration, layout, directory, modelFingerprint, log);
    }
    report.gradients(gradients.load().isPresent() ? directory : "", manifest.samples(), manifest.calibrationFingerprint(),
        gradients.norm().id(), manifest.blockImportance(), (System.nanoTime() - start) / 1e9);
    return new GradientSource(directory, gradients.norm());
  }

  private List<LinearResult> prune(List<PlannedLinear> plan, Scoring scoring) throws IOException {
    if (!scoring.settings().needsCalibration(plan)) {
      List<LinearResult> results = scoring.withoutStatistics(plan);
      TreeSet<String> methods = new TreeSet<>();
      plan.forEach(planned -> methods.add(planned.method.displayName()));
      log.line("scored %d linears with %s (no calibration needed)", plan.size(), String.join(", ", methods));
      return results;
    }
    CalibrationStatistics.HessianStorage storage = scoring.settings().hessianStorage(plan);
    if (statistics.load().isPresent()) {
      String directory = statistics.load().get();
      List<String> keys = StatisticsFiles.checkManifest(
          stages().context().io(), directory, modelFingerprint, scoring.settings().hessianUser(plan));
      JavaPairRDD<String, CalibrationStatistics> saved =
          stages().jsc().parallelize(keys, Math.max(1, keys.size())).mapToPair(new StatisticsFiles.Load(stages().context(), directory));
      List<LinearResult> results = scoring.score(plan, saved);
      log.line("scored %d linears from the saved statistics in %s", plan.size(), directory);
      return results;
    }
    LinearInputStatistics visitor = new LinearInputStatistics(storage, statistics.expertInputs());
    try (CalibrationPass pass = calibration.embed(stages(), blocks(), log, sharding(storage, statistics.expertInputs()))) {
      return statistics.sequential() ? sequential(plan, pass, visitor, scoring) : oneShot(plan, pass, visitor, scoring);
    }
  }

  /**
   * Wanda's per-channel statistics of every block of the dense model, for allocations that rank
   * linears or blocks by Wanda scores (OWL's outlier ratios, global Wanda): one calibration pass,
   * one forward pass per block, only the small per-channel vectors reach the driver.
   */
  public Map<String, CalibrationStatistics> denseChannelStatistics() {
    LinearInputStatistics visitor = new LinearInputStatistics(CalibrationStatistics.HessianStorage.NONE, InputHook.ExpertInputs.ROUTED);
    Map<String, CalibrationStatistics> dense = new HashMap<>();
    try (CalibrationPass pass = calibration.embed(stages(), blocks(), log,
        sharding(CalibrationStatistics.HessianStorage.NONE, InputHook.ExpertInputs.ROUTED))) {
      for (int b = 0; b < blocks(); b++) {
        dense.putAll(pass.collectAndAdvance(visitor).asMap());
      }
    }
    return dense;
  }

  /**
   * The MoE blocks to run expert-parallel: those whose experts, with the statistics this run
   * keeps per expert, make more than one group under --expert-task-mb ({@link ExpertPlan}).
   */
  private ExpertSharding sharding(CalibrationStatistics.HessianStorage storage, InputHook.ExpertInputs inputs) {
    CalibrationShape shape = new CalibrationShape(calibration.size(), calibration.settings().seqlen(), calibration.partitions(stages().jsc()));
    PlanSettings settings = new PlanSettings(
        shape, ExpertStatistics.of(storage), inputs, statistics.expertTaskBytes(), SparkExecutors.of(stages().jsc()));
    return ExpertSharding.of(ExpertPlan.of(layout, config, settings));
  }

  /** Runs a scoring stage of an allocation's own per-linear function (masks written, figures back). */
  public List<LinearResult> emit(org.apache.spark.api.java.JavaRDD<LinearResult> scored) {
    return scoring.emit(scored);
  }

  public JobStages stages() {
    return scoring.stages();
  }

  public int blocks() {
    return layout.blocks().size();
  }

  public PruneReport.Builder report() {
    return report;
  }

  public ProgressLog log() {
    return log;
  }

  /** Block by block: statistics of block b on the model pruned up to b - 1, then block b scored. */
  private List<LinearResult> sequential(List<PlannedLinear> plan, CalibrationPass pass, LinearInputStatistics visitor, Scoring scoring) {
    List<LinearResult> results = new ArrayList<>();
    List<PlannedLinear> previous = List.of();
    for (int b = 0; b < blocks(); b++) {
      long start = System.nanoTime();
      List<PlannedLinear> blockPlan = ofBlock(plan, b);
      // One pass over the cached states: through pruned block b - 1, then block b's statistics.
      BlockPartials<CalibrationStatistics> partials =
          b == 0 ? pass.collect(visitor) : pass.advanceThenCollect(StagedPrunedBlock.of(layout, b - 1, previous), visitor);
      stages().describe(String.format(Locale.ROOT, "block %d/%d: scoring", b + 1, blocks()));
      results.addAll(scoring.score(blockPlan, partials));
      previous = blockPlan;
      blockDone(b, start, ", " + blockPlan.size() + " linears pruned");
    }
    return results;
  }

  /** Dense statistics of every block (one forward pass per block), then every linear in one scoring stage. */
  private List<LinearResult> oneShot(List<PlannedLinear> plan, CalibrationPass pass, LinearInputStatistics visitor, Scoring scoring)
      throws IOException {
    // Per-channel statistics come back to the driver block by block; X^T X stays distributed.
    Map<String, CalibrationStatistics> onDriver = new HashMap<>();
    List<JavaPairRDD<String, CalibrationStatistics>> distributed = new ArrayList<>();
    for (int b = 0; b < blocks(); b++) {
      long start = System.nanoTime();
      BlockPartials<CalibrationStatistics> partials = pass.collectAndAdvance(visitor);
      if (visitor.foldOnDriver()) {
        onDriver.putAll(partials.asMap());
      } else {
        JavaPairRDD<String, CalibrationStatistics> block = partials.asRdd(stages().jsc()).persist(StorageLevel.MEMORY_AND_DISK());
        block.count();
        distributed.add(block);
      }
      blockDone(b, start, "");
    }
    BlockPartials<CalibrationStatistics> all = visitor.foldOnDriver()
        ? BlockPartials.onDriver(onDriver)
        : BlockPartials.distributed(distributed.stream().reduce(JavaPairRDD::union).orElseThrow());
    if (statistics.save()) {
      StatisticsFiles.save(stages(), all.asRdd(stages().jsc()), visitor.storage(), modelFingerprint, calibration, log);
    }
    stages().describe("scoring");
    List<LinearResult> results = scoring.score(plan, all);
    distributed.forEach(rdd -> rdd.unpersist(false));
    log.line("scored %d linears in one stage from dense statistics", plan.size());
    return results;
  }

  static List<PlannedLinear> ofBlock(List<PlannedLinear> plan, int block) {
    List<PlannedLinear> blockPlan = new ArrayList<>();
    for (PlannedLinear planned : plan) {
      if (planned.block() == block) {
        blockPlan.add(planned);
      }
    }
    return blockPlan;
  }

  private void blockDone(int block, long start, String what) {
    double seconds = (System.nanoTime() - start) / 1e9;
    report.block(block, seconds);
    log.line("block %d/%d: calibrated%s (%.1f s)", block + 1, blocks(), what, seconds);
  }
}
