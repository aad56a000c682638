package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.prune.calibration.CalibrationPass;
import dev.sparkprune.jobs.prune.calibration.CalibrationSamples;
import dev.sparkprune.jobs.prune.calibration.LinearInputStatistics;
import dev.sparkprune.jobs.spark.FaultInjection;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.InputFiles;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * The prune job's driver: plans from headers, samples calibration windows, runs the per-block
 * stages, rewrites the archive and publishes everything atomically. No weight or hidden state
 * passes through the driver: it sees layer summaries, and for Wanda and RIA the per-channel
 * statistics vectors it broadcasts.
 */
public final class PruneJob {
  private final SparkSession spark;
  private final PruneOptions options;
  private final PrintStream progress;
  private final long start = System.nanoTime();
  /** SHA-256 of the calibration token windows, once sampled. */
  private String calibrationFingerprint = "";
  /** The model's fingerprint (config and every shard header), read once per run. */
  private String modelFingerprint = "";
  /** The calibration and scoring stages' GPU profile and the Spark UI's job descriptions. */
  private JobStages stages;

  public PruneJob(SparkSession spark, PruneOptions options, PrintStream progress) {
    this.spark = spark;
    this.options = options;
    this.progress = progress;
  }

  public PruneReport run() throws IOException {
    return run(JobInputs.open(new HadoopFileIO(spark.sparkContext().hadoopConfiguration()), options));
  }

  /** Runs on inputs already opened and checked: the CLI opens them before it starts Spark. */
  public PruneReport run(JobInputs inputs) throws IOException {
    ValidationFailureLogs.nextJob();
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    OutputGuard.check(conf, options);
    HadoopFileIO io = new HadoopFileIO(conf);
    PruneReport.Builder report = PruneReport.builder(options, spark.sparkContext().master());

    ModelArchive archive = inputs.archive;
    ModelLayout layout = inputs.layout;
    List<PlannedLinear> plan = inputs.plan;
    modelFingerprint = Fingerprints.model(archive);
    report.model(layout, modelFingerprint);
    log("plan: %s, %d blocks, %d linears, %s of %s parameters prunable (headers only)",
        layout.modelType(), layout.blocks().size(), inputs.prunableLinears, String.format(Locale.ROOT, "%,d", layout.prunableParameters()),
        String.format(Locale.ROOT, "%,d", layout.totalParameters()));
    if (options.config().isPresent()) {
      log("config %s: %d of %d linears pruned, %d skipped", options.config().get(), plan.size(), inputs.prunableLinears,
          inputs.prunableLinears - plan.size());
    }
    boolean needsCalibration = inputs.needsCalibration;
    Optional<ResourceProfile> gpuProfile = GpuScheduling.profile(spark.sparkContext().conf(), spark.sparkContext().master(), options);
    stages = new JobStages(spark.sparkContext(), gpuProfile);
    gpuProfile.ifPresent(profile -> log("GPU stages: calibration and scoring tasks request %s", profile.taskResources().get(GpuScheduling.GPU).get()));
    report.stage("plan", seconds());

    String runId = UUID.randomUUID().toString().substring(0, 8);
    // Its own job group, so a failure cancels this run's tasks and no concurrent run's.
    String jobGroup = "sparkprune-prune-" + runId;
    spark.sparkContext().setJobGroup(jobGroup, "sparkprune prune " + options.model(), false);
    FaultInjection faults = FaultInjection.parse(spark.sparkContext().conf());
    Publisher publisher = Publisher.prepare(conf, options.out(), runId, options.overwrite(), faults);
    try {
      JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
      Broadcast<SerializableConfiguration> confBroadcast = jsc.broadcast(new SerializableConfiguration(conf));
      int threads = spark.sparkContext().conf().getInt("spark.task.cpus", 1);
      JobContext context = new JobContext(archive.location(), publisher.staging(), confBroadcast, threads, faults);
      MaskWriter masks = new MaskWriter(spark, io.resolve(publisher.staging(), "masks"));
      List<LinearResult> results = new ArrayList<>();

      if (options.allocation() == PruneOptions.Allocation.GLOBAL || options.allocation() == PruneOptions.Allocation.LAMP) {
        Map<String, CalibrationStatistics> wanda = null;
        if (options.method() == dev.sparkprune.scoring.methods.PruningMethod.WANDA) {
          try (CalibrationPass dense = embed(jsc, io, inputs.tokenizer.orElseThrow(), context, report, layout.blocks().size())) {
            wanda = OwlAllocation.denseStatistics(dense, layout.blocks().size());
          }
        }
        GlobalAllocation.Outcome outcome = GlobalAllocation.run(jsc, context, plan, options, masks, wanda);
        results.addAll(outcome.results);
        report.allocation(options, outcome.threshold, outcome.histogramBytes);
        log("%s allocation: threshold %s over %d linears, %,d bytes of histograms to the driver",
            options.allocation().name().toLowerCase(Locale.ROOT), outcome.threshold, plan.size(), outcome.histogramBytes);
      } else if (!needsCalibration) {
        results.addAll(score(jsc, context, plan, null, masks));
        log("scored %d linears with %s (no calibration needed)", plan.size(), options.method().displayName());
      } else if (options.statistics().isPresent()) {
        String directory = options.statistics().get();
        List<String> keys = StatisticsFiles.checkManifest(io, directory, modelFingerprint, hessianStorage(plan)
            != CalibrationStatistics.HessianStorage.NONE);
        JavaPairRDD<String, CalibrationStatistics> saved =
            jsc.parallelize(keys, Math.max(1, keys.size())).mapToPair(new StatisticsFiles.Load(context, directory));
        results.addAll(score(jsc, context, plan, saved, masks));
        log("scored %d linears from the saved statistics in %s", plan.size(), directory);
      } else {
        results.addAll(calibrateAndScore(jsc, io, inputs.tokenizer.orElseThrow(), layout, plan, context, masks, report));
      }
      report.stage("prune", seconds());

      writeArchive(jsc, io, archive, context, publisher.staging(), plan);
      report.stage("write", seconds());
      deleteRecursively(conf, io.resolve(publisher.staging(), StagedTensors.DIRECTORY));
      PruneReport finished = report.layers(results).total(seconds()).build();
      finished.write(io, io.resolve(publisher.staging(), "report.json"));
      publisher.publish();
      log("published %s", publisher.out());
      return finished;
    } catch (Throwable e) {
      // Task failures arrive as SparkException, which Java code does not see declared.
      awaitRunningTasks(jobGroup);
      publisher.abort();
      throw e;
    }
  }

  private List<LinearResult> calibrateAndScore(
      JavaSparkContext jsc, HadoopFileIO io, Tokenizer tokenizer, ModelLayout layout, List<PlannedLinear> initialPlan,
      JobContext context, MaskWriter masks, PruneReport.Builder report) throws IOException {
    // OWL replaces the uniform targets with per-block ones.
    List<PlannedLinear> plan = initialPlan;
    int blocks = layout.blocks().size();
    if (options.allocation() == PruneOptions.Allocation.OWL) {
      OwlAllocation.Outcome owl;
      try (CalibrationPass dense = embed(jsc, io, tokenizer, context, report, blocks)) {
        owl = OwlAllocation.run(jsc, context, dense, plan, blocks, options);
      }
      plan = OwlAllocation.withBlockTargets(plan, owl.targets);
      report.owl(options, owl.outlierRatios, owl.targets);
      StringBuilder targets = new StringBuilder();
      for (int b = 0; b < owl.targets.length; b++) {
        targets.append(b == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.1f%%->%s", owl.outlierRatios[b], owl.targets[b]));
      }
      log("owl: outlier ratios and block targets %s (%.1f s)", targets, seconds());
    }
    LinearInputStatistics visitor = new LinearInputStatistics(hessianStorage(plan), options.moeCalibration());
    boolean sequential = options.mode() == PruneOptions.Mode.SEQUENTIAL;
    List<LinearResult> results = new ArrayList<>();
    List<JavaPairRDD<String, CalibrationStatistics>> deferred = new ArrayList<>();
    try (CalibrationPass pass = embed(jsc, io, tokenizer, context, report, blocks)) {
      List<PlannedLinear> previousPlan = List.of();
      for (int b = 0; b < blocks; b++) {
        long blockStart = System.nanoTime();
        List<PlannedLinear> blockPlan = new ArrayList<>();
        for (PlannedLinear planned : plan) {
          if (planned.block() == b) {
            blockPlan.add(planned);
          }
        }
        JavaPairRDD<String, CalibrationStatistics> statistics;
        if (!sequential) {
          // Dense statistics: one forward pass per block gives its statistics and the next block's input.
          statistics = pass.collectAndAdvance(visitor).persist(StorageLevel.MEMORY_AND_DISK());
          statistics.count();
          deferred.add(statistics);
        } else {
          // One pass over the cached states: through pruned block b - 1, then block b's statistics.
          statistics = b == 0 ? pass.collect(visitor) : pass.advanceThenCollect(StagedPrunedBlock.of(layout, b - 1, previousPlan), visitor);
          stages.describe(String.format(Locale.ROOT, "block %d/%d: scoring", b + 1, blocks));
          results.addAll(score(jsc, context, blockPlan, statistics, masks));
        }
        previousPlan = blockPlan;
        double blockSeconds = (System.nanoTime() - blockStart) / 1e9;
        report.block(b, blockSeconds);
        log("block %d/%d: calibrated%s (%.1f s)", b + 1, blocks, sequential ? ", " + blockPlan.size() + " linears pruned" : "", blockSeconds);
      }
    }
    if (!sequential) {
      JavaPairRDD<String, CalibrationStatistics> all = deferred.get(0);
      for (int i = 1; i < deferred.size(); i++) {
        all = all.union(deferred.get(i));
      }
      if (options.saveStatistics()) {
        String directory = io.resolve(context.staging(), "stats");
        stages.describe("save statistics");
        all.foreach(new StatisticsFiles.Save(context, directory));
        List<String> keys = new ArrayList<>(all.keys().collect());
        keys.sort(null);
        StatisticsFiles.writeManifest(io, directory, modelFingerprint, options, keys, visitor.storage(), calibrationFingerprint);
        log("saved dense statistics of %d inputs under stats/", keys.size());
      }
      stages.describe("scoring");
      results.addAll(score(jsc, context, plan, all, masks));
      deferred.forEach(rdd -> rdd.unpersist(false));
      log("scored %d linears in one stage from dense statistics", plan.size());
    }
    return results;
  }

  /** Samples calibration windows and embeds them on the executors, chunk by chunk. */
  private CalibrationPass embed(
      JavaSparkContext jsc, HadoopFileIO io, Tokenizer tokenizer, JobContext context, PruneReport.Builder report, int blocks)
      throws IOException {
    int[][] samples = CalibrationSamples.sample(
        io, options.calibration().get(), tokenizer, options.nsamples(), options.seqlen(), options.seed());
    calibrationFingerprint = Fingerprints.calibration(samples);
    report.calibrationFingerprint(calibrationFingerprint);
    int partitions = options.partitions() > 0 ? options.partitions() : jsc.defaultParallelism();
    CalibrationPass pass = CalibrationPass.embed(jsc, context, stages, samples, options.chunkSize(), partitions, blocks);
    log("calibration: %d samples x %d tokens in %d chunks on %d partitions (%.1f s)",
        samples.length, options.seqlen(), pass.chunks(), pass.partitions(), seconds());
    return pass;
  }

  /**
   * Scoring tasks of about --scoring-task-mb of weights each ({@link ScoringTasks}), a task
   * scoring its linears one at a time. Per-channel statistics (Wanda, RIA) are small: they are collected and
   * broadcast. Hessians (SparseGPT) stay distributed: each goes to the task of every linear that
   * reads the same input.
   */
  private List<LinearResult> score(
      JavaSparkContext jsc, JobContext context, List<PlannedLinear> linears,
      JavaPairRDD<String, CalibrationStatistics> statistics, MaskWriter masks) {
    Map<String, PlannedLinear> byName = new HashMap<>();
    for (PlannedLinear planned : linears) {
      byName.put(planned.tensorName(), planned);
    }
    List<List<PlannedLinear>> groups = ScoringTasks.group(linears, options.scoringTaskBytes(), jsc.defaultParallelism());
    JavaRDD<Tuple2<PlannedLinear, CalibrationStatistics>> tasks;
    Broadcast<Map<String, CalibrationStatistics>> channel = null;
    // Decided by the method, not by probing the RDD: every action would rerun the block's forward pass.
    if (statistics != null && hessianStorage(linears) == CalibrationStatistics.HessianStorage.NONE) {
      channel = jsc.broadcast(new HashMap<>(statistics.collectAsMap()));
    }
    if (statistics == null || channel != null) {
      tasks = jsc.parallelize(groups, Math.max(1, groups.size())).flatMap(new Unfold());
    } else {
      Broadcast<Map<String, PlannedLinear>> planBroadcast = jsc.broadcast(byName);
      tasks = statistics
          .flatMapToPair(new PerLinear(planBroadcast))
          .partitionBy(new LinearPartitioner(ScoringTasks.taskIndex(groups), groups.size()))
          .map(new WithPlan(planBroadcast));
    }
    JavaRDD<LinearResult> scored = stages.onGpus(tasks.map(new PruneFunctions.ScoreLinear(
        context, channel, options.wandaGroup(), options.refinement(), options.minExpertTokens())))
        .persist(StorageLevel.MEMORY_AND_DISK());
    masks.append(scored);
    List<LinearResult> summaries = scored.map(new Summary()).collect();
    scored.unpersist(false);
    if (channel != null) {
      channel.destroy();
    }
    return summaries;
  }

  /** X^T X is kept when any planned linear's method needs it (SparseGPT), or the ADMM update does. */
  private CalibrationStatistics.HessianStorage hessianStorage(List<PlannedLinear> plan) {
    if (options.refinement().needsHessian()) {
      return CalibrationStatistics.HessianStorage.DOUBLE;
    }
    for (PlannedLinear planned : plan) {
      if (planned.method.hessianStorage() != CalibrationStatistics.HessianStorage.NONE) {
        return planned.method.hessianStorage();
      }
    }
    return CalibrationStatistics.HessianStorage.NONE;
  }

  private void writeArchive(
      JavaSparkContext jsc, HadoopFileIO io, ModelArchive archive, JobContext context, String staging,
      List<PlannedLinear> plan) throws IOException {
    String modelDirectory = io.resolve(staging, "model");
    Set<String> pruned = new LinkedHashSet<>();
    plan.forEach(planned -> pruned.add(planned.tensorName()));
    List<String> shards = new ArrayList<>();
    archive.shards().forEach(shard -> shards.add(shard.fileName()));
    stages.describe("write");
    jsc.parallelize(shards, shards.size()).map(new PruneFunctions.WriteShard(context, pruned, modelDirectory)).collect();
    // Config, tokenizer and other small files; never another copy of the weights (a pickle or
    // a second format next to the safetensors would hold the unpruned model).
    for (String file : archive.otherFiles()) {
      if (!ModelArchive.isWeightFile(file)) {
        copySmallFile(io, archive.io().resolve(archive.location(), file), io.resolve(modelDirectory, file));
      }
    }
    if (archive.isSharded()) {
      copySmallFile(io, archive.io().resolve(archive.location(), ModelArchive.INDEX), io.resolve(modelDirectory, ModelArchive.INDEX));
    }
    log("model: %d shard(s) written, %d tensors pruned, others copied byte for byte (%.1f s)", shards.size(), pruned.size(), seconds());
  }

  private static void copySmallFile(HadoopFileIO io, String from, String to) throws IOException {
    byte[] bytes = InputFiles.readAll(io.newInputFile(from), 256L << 20);
    try (var out = io.newOutputFile(to).create()) {
      out.write(bytes);
    }
  }

  private static void deleteRecursively(Configuration conf, String location) throws IOException {
    org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(location);
    path.getFileSystem(conf).delete(path, true);
  }

  private double seconds() {
    return (System.nanoTime() - start) / 1e9;
  }

  private void log(String format, Object... args) {
    progress.printf(Locale.ROOT, "[%6.1fs] %s%n", seconds(), String.format(Locale.ROOT, format, args));
    progress.flush();
  }

  /** A statistics key's result, once for every linear that reads that input. */
  static final class PerLinear implements org.apache.spark.api.java.function.PairFlatMapFunction<
      Tuple2<String, CalibrationStatistics>, String, CalibrationStatistics> {
    private static final long serialVersionUID = 1L;
    private final Broadcast<Map<String, PlannedLinear>> plan;

    PerLinear(Broadcast<Map<String, PlannedLinear>> plan) {
      this.plan = plan;
    }

    @Override
    public java.util.Iterator<Tuple2<String, CalibrationStatistics>> call(Tuple2<String, CalibrationStatistics> keyed) {
      List<Tuple2<String, CalibrationStatistics>> out = new ArrayList<>();
      for (PlannedLinear planned : plan.value().values()) {
        if (planned.statisticsKey().equals(keyed._1())) {
          out.add(new Tuple2<>(planned.tensorName(), keyed._2()));
        }
      }
      out.sort(java.util.Comparator.comparing(Tuple2::_1));
      return out.iterator();
    }
  }

  /** Attaches the plan row to a linear's statistics. */
  static final class WithPlan implements org.apache.spark.api.java.function.Function<
      Tuple2<String, CalibrationStatistics>, Tuple2<PlannedLinear, CalibrationStatistics>> {
    private static final long serialVersionUID = 1L;
    private final Broadcast<Map<String, PlannedLinear>> plan;

    WithPlan(Broadcast<Map<String, PlannedLinear>> plan) {
      this.plan = plan;
    }

    @Override
    public Tuple2<PlannedLinear, CalibrationStatistics> call(Tuple2<String, CalibrationStatistics> keyed) {
      return new Tuple2<>(plan.value().get(keyed._1()), keyed._2());
    }
  }

  /** The driver's copy of a result: figures only, no mask bits. */
  static final class Summary implements org.apache.spark.api.java.function.Function<LinearResult, LinearResult> {
    private static final long serialVersionUID = 1L;

    @Override
    public LinearResult call(LinearResult result) {
      return result.summary();
    }
  }

  /** A task's linears, each without statistics (they come by broadcast, or are not needed). */
  static final class Unfold implements org.apache.spark.api.java.function.FlatMapFunction<
      List<PlannedLinear>, Tuple2<PlannedLinear, CalibrationStatistics>> {
    private static final long serialVersionUID = 1L;

    @Override
    public java.util.Iterator<Tuple2<PlannedLinear, CalibrationStatistics>> call(List<PlannedLinear> group) {
      List<Tuple2<PlannedLinear, CalibrationStatistics>> out = new ArrayList<>();
      group.forEach(planned -> out.add(new Tuple2<>(planned, null)));
      return out.iterator();
    }
  }

  /** One partition per scoring task of {@link ScoringTasks}: a linear goes to its group's task. */
  static final class LinearPartitioner extends org.apache.spark.Partitioner {
    private static final long serialVersionUID = 1L;
    private final Map<String, Integer> index;
    private final int tasks;

    LinearPartitioner(Map<String, Integer> index, int tasks) {
      this.index = new HashMap<>(index);
      this.tasks = Math.max(1, tasks);
    }

    @Override
    public int numPartitions() {
      return tasks;
    }

    @Override
    public int getPartition(Object key) {
      return index.get((String) key);
    }
  }

  /**
   * A failed job leaves its other running tasks going (Spark does not interrupt them): one may
   * still stage a tensor after the staging folder is deleted and so recreate it. Cancel this
   * run's job group and wait, bounded, until none of its stages has a task running.
   */
  private void awaitRunningTasks(String jobGroup) {
    org.apache.spark.SparkContext context = spark.sparkContext();
    context.cancelJobGroup(jobGroup);
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (System.nanoTime() < deadline) {
      int running = 0;
      for (int jobId : context.statusTracker().getJobIdsForGroup(jobGroup)) {
        org.apache.spark.SparkJobInfo job = context.statusTracker().getJobInfo(jobId).getOrElse(() -> null);
        for (int stageId : job == null ? new int[0] : job.stageIds()) {
          org.apache.spark.SparkStageInfo stage = context.statusTracker().getStageInfo(stageId).getOrElse(() -> null);
          running += stage == null ? 0 : stage.numActiveTasks();
        }
      }
      if (running == 0) {
        return;
      }
      try {
        Thread.sleep(50);
      } catch (InterruptedException interrupted) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }
}
