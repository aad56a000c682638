package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.calibration.SparkExecutors;
import dev.sparkprune.jobs.output.OutputGuard;
import dev.sparkprune.jobs.output.Publisher;
import dev.sparkprune.jobs.prune.allocation.Allocation;
import dev.sparkprune.jobs.prune.output.ArchiveWriter;
import dev.sparkprune.jobs.prune.output.LinearResult;
import dev.sparkprune.jobs.prune.output.MaskWriter;
import dev.sparkprune.jobs.prune.output.PruneReport;
import dev.sparkprune.jobs.prune.output.StagedTensors;
import dev.sparkprune.jobs.prune.plan.Fingerprints;
import dev.sparkprune.jobs.prune.score.CalibratedScoring;
import dev.sparkprune.jobs.prune.score.Scoring;
import dev.sparkprune.jobs.spark.GpuScheduling;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.jobs.spark.StagedRun;
import dev.sparkprune.jobs.spark.ValidationFailureLogs;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.apache.hadoop.conf.Configuration;
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
    // Batches and nested runs open their inputs here, with this session's executors.
    return run(JobInputs.open(new HadoopFileIO(spark.sparkContext().hadoopConfiguration()), options,
        SparkExecutors.of(spark.sparkContext().master(), spark.sparkContext().getConf()), spark.sparkContext().defaultParallelism()));
  }

  /** Runs on inputs already opened and checked: the CLI opens them before it starts Spark. */
  public PruneReport run(JobInputs inputs) throws IOException {
    ValidationFailureLogs.nextJob();
    ProgressLog log = new ProgressLog(progress);
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    HadoopFileIO io = new HadoopFileIO(conf);
    OutputGuard.check(conf, options.output());

    // 1. Plan: headers only; the calibration windows, sampled on the driver before Spark started (JobInputs), fingerprinted.
    PruneReport.Builder report = PruneReport.builder(options.reportConfiguration(spark.sparkContext().master()));
    String modelFingerprint = Fingerprints.model(inputs.archive);
    report.model(inputs.layout, modelFingerprint);
    logPlan(log, inputs);
    CalibrationSource calibration = inputs.calibration;
    if (!calibration.isEmpty()) {
      report.calibrationFingerprint(calibration.fingerprint());
    }
    Optional<ResourceProfile> gpus = GpuScheduling.profile(spark.sparkContext().conf(), spark.sparkContext().master(), options.gpus());
    gpus.ifPresent(profile -> log.line("GPU stages: calibration and scoring tasks request %s",
        profile.taskResources().get(GpuScheduling.GPU).get()));
    report.stage("plan", log.seconds());

    return StagedRun.start(spark, "prune", options.model()).publish(Publisher.preparer(conf, options.output()), log, run -> {
      JobStages stages = run.stages(inputs.archive.location(), gpus);
      MaskWriter masks = new MaskWriter(stages.context(), io.resolve(run.staging(), "masks"));

      // 2. Calibration pass and scoring, as the allocation drives them; masks written as tasks finish.
      CalibratedScoring scoring = new CalibratedScoring(new Scoring(stages, options.scoring(), masks), calibration,
          options.statisticsSettings(), options.gradientSettings(), modelFingerprint, inputs.layout, inputs.archive.config(), report, log);
      List<LinearResult> results = allocation().prune(scoring, inputs.plan);
      report.stage("prune", log.seconds());

      // 3. Outputs: the pruned archive in the input's layout, then the report; 4. the skeleton publishes.
      ArchiveWriter.write(stages, inputs.archive, inputs.plan, log);
      report.stage("write", log.seconds());
      StagedTensors.delete(io, run.staging());
      masks.removeLeftovers();
      PruneReport finished = report.layers(results).total(log.seconds()).build();
      finished.write(io, io.resolve(run.staging(), "report.json"));
      return finished;
    });
  }

  /** The allocation the options name, with the settings it reads. */
  private Allocation allocation() {
    return switch (options.allocation()) {
      case UNIFORM -> Allocation.uniform();
      case OWL -> Allocation.owl(options.target(), options.owlLambda(), options.owlM());
      case GLOBAL, LAMP -> Allocation.global(options.allocation() == PruneOptions.Allocation.LAMP,
          options.method() == PruningMethod.WANDA, options.target(), options.minKeep());
    };
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
}
