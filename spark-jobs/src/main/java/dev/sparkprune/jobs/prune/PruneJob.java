package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.prune.allocation.Allocation;
import dev.sparkprune.jobs.prune.output.ArchiveWriter;
import dev.sparkprune.jobs.prune.output.MaskWriter;
import dev.sparkprune.jobs.prune.output.OutputGuard;
import dev.sparkprune.jobs.prune.output.PruneReport;
import dev.sparkprune.jobs.prune.output.Publisher;
import dev.sparkprune.jobs.prune.plan.Fingerprints;
import dev.sparkprune.jobs.prune.plan.JobInputs;
import dev.sparkprune.jobs.prune.score.LinearResult;
import dev.sparkprune.jobs.prune.score.Scoring;
import dev.sparkprune.jobs.prune.score.StagedTensors;
import dev.sparkprune.jobs.prune.calibration.CalibrationSamples;
import dev.sparkprune.jobs.spark.FaultInjection;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobGroups;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.SerializableConfiguration;
import dev.sparkprune.jobs.spark.ValidationFailures;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.sql.SparkSession;

/**
 * The prune job's driver, as its pipeline: plan (from headers, with the calibration windows
 * sampled and fingerprinted), calibration pass and scoring as the {@link Allocation} drives
 * them, outputs (masks, the pruned archive, the report) under a staging folder, publish. No
 * weight or hidden state passes through the driver: it sees layer summaries, and for Wanda and
 * RIA the per-channel statistics vectors it broadcasts.
 */
public final class PruneJob {
  private final SparkSession spark;
  private final PruneOptions options;
  private final PrintStream progress;

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
    ValidationFailures.install(spark.sparkContext());
    ProgressLog log = new ProgressLog(progress);
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    OutputGuard.check(conf, options);
    HadoopFileIO io = new HadoopFileIO(conf);
    PruneReport.Builder report = PruneReport.builder(options, spark.sparkContext().master());
    String modelFingerprint = Fingerprints.model(inputs.archive);
    report.model(inputs.layout, modelFingerprint);
    logPlan(log, inputs);
    int[][] samples = inputs.tokenizer.isPresent()
        ? CalibrationSamples.sample(io, options.calibration().get(), inputs.tokenizer.get(), options.nsamples(), options.seqlen(), options.seed())
        : new int[0][];
    String calibrationFingerprint = samples.length > 0 ? Fingerprints.calibration(samples) : "";
    if (samples.length > 0) {
      report.calibrationFingerprint(calibrationFingerprint);
    }
    Optional<ResourceProfile> gpuProfile = GpuScheduling.profile(spark.sparkContext().conf(), spark.sparkContext().master(), options);
    gpuProfile.ifPresent(profile -> log.line("GPU stages: calibration and scoring tasks request %s",
        profile.taskResources().get(GpuScheduling.GPU).get()));
    report.stage("plan", log.seconds());

    String runId = UUID.randomUUID().toString().substring(0, 8);
    // Its own job group, so a failure cancels this run's tasks and no concurrent run's.
    String jobGroup = "sparkprune-prune-" + runId;
    spark.sparkContext().setJobGroup(jobGroup, "sparkprune prune " + options.model(), false);
    FaultInjection faults = FaultInjection.parse(spark.conf());
    Publisher publisher = Publisher.prepare(conf, options.out(), runId, options.overwrite(), faults);
    try {
      JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
      JobContext context = new JobContext(archiveLocation(inputs), publisher.staging(),
          jsc.broadcast(new SerializableConfiguration(conf)), spark.sparkContext().conf().getInt("spark.task.cpus", 1), faults);
      JobStages stages = new JobStages(spark.sparkContext(), gpuProfile);
      MaskWriter masks = new MaskWriter(context, io.resolve(publisher.staging(), "masks"));
      Scoring scoring = new Scoring(jsc, context, stages, options, masks);
      PruneRun run = new PruneRun(options, inputs, samples, calibrationFingerprint, modelFingerprint, jsc, io, context, stages, scoring,
          report, log);

      List<LinearResult> results = Allocation.of(options.allocation()).prune(run, inputs.plan);
      report.stage("prune", log.seconds());
      ArchiveWriter.write(run, inputs.plan);
      report.stage("write", log.seconds());
      deleteRecursively(conf, io.resolve(publisher.staging(), StagedTensors.DIRECTORY));
      masks.removeLeftovers();
      PruneReport finished = report.layers(results).total(log.seconds()).build();
      finished.write(io, io.resolve(publisher.staging(), "report.json"));
      publisher.publish();
      log.line("published %s", publisher.out());
      return finished;
    } catch (Throwable e) {
      // Task failures arrive as SparkException, which Java code does not see declared.
      try {
        JobGroups.cancelAndAwait(spark.sparkContext(), jobGroup);
      } finally {
        publisher.abort();
      }
      throw e;
    } finally {
      spark.sparkContext().setJobDescription(null);
    }
  }

  private static String archiveLocation(JobInputs inputs) {
    return inputs.archive.location();
  }

  private void logPlan(ProgressLog log, JobInputs inputs) {
    ModelLayout layout = inputs.layout;
    log.line("plan: %s, %d blocks, %d linears, %s of %s parameters prunable (headers only)",
        layout.modelType(), layout.blocks().size(), inputs.prunableLinears, String.format(Locale.ROOT, "%,d", layout.prunableParameters()),
        String.format(Locale.ROOT, "%,d", layout.totalParameters()));
    if (options.config().isPresent()) {
      log.line("config %s: %d of %d linears pruned, %d skipped", options.config().get(), inputs.plan.size(), inputs.prunableLinears,
          inputs.prunableLinears - inputs.plan.size());
    }
  }

  private static void deleteRecursively(Configuration conf, String location) throws IOException {
    org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(location);
    path.getFileSystem(conf).delete(path, true);
  }
}
