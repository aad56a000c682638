package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.jobs.prune.output.PruneReport;
import dev.sparkprune.jobs.prune.JobInputs;
import dev.sparkprune.jobs.prune.score.Scoring;
import dev.sparkprune.jobs.calibration.CalibrationPass;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.util.Objects;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * One prune run's facts, fixed once the plan is made and passed to every stage: the options,
 * the opened inputs, the sampled calibration windows (none when the run does not embed text)
 * and their fingerprint, the model's fingerprint, the executors' context, the stage marks and
 * the scoring stage. The report builder and the progress log are the run's two outputs.
 */
public record PruneRun(
    PruneOptions options,
    JobInputs inputs,
    int[][] samples,
    String calibrationFingerprint,
    String modelFingerprint,
    HadoopFileIO io,
    JobStages stages,
    Scoring scoring,
    PruneReport.Builder report,
    ProgressLog log) {
  public PruneRun {
    Objects.requireNonNull(options, "options is null");
    Objects.requireNonNull(inputs, "inputs is null");
    Objects.requireNonNull(samples, "samples is null");
    Objects.requireNonNull(calibrationFingerprint, "calibrationFingerprint is null");
    Objects.requireNonNull(modelFingerprint, "modelFingerprint is null");
    Objects.requireNonNull(io, "io is null");
    Objects.requireNonNull(stages, "stages is null");
    Objects.requireNonNull(scoring, "scoring is null");
    Objects.requireNonNull(report, "report is null");
    Objects.requireNonNull(log, "log is null");
  }

  public JavaSparkContext jsc() {
    return stages.jsc();
  }

  public JobContext context() {
    return stages.context();
  }

  public int blocks() {
    return inputs.layout.blocks().size();
  }

  /** Embeds the run's samples on the executors: a calibration pass at block 0. */
  public CalibrationPass embed() {
    int partitions = options.partitions() > 0 ? options.partitions() : jsc().defaultParallelism();
    CalibrationPass pass = CalibrationPass.embed(stages, samples, options.chunkSize(), partitions, blocks());
    log.line("calibration: %d samples x %d tokens in %d chunks on %d partitions", samples.length, options.seqlen(), pass.chunks(),
        pass.partitions());
    return pass;
  }
}
