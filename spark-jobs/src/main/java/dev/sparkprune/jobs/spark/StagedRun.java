package dev.sparkprune.jobs.spark;

import java.io.IOException;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.sql.SparkSession;

/**
 * The skeleton every job runs in (prune, shrink, batch, task evaluation): a run id; the run's own
 * Spark job group, so a failure cancels this run's tasks and no concurrent run's; the fault probe
 * the session names (a no-op outside tests); and, for a job that writes an output, its staging
 * folder, published whole when the job's body returns or dropped when it throws (after the
 * run's tasks have stopped, so none writes into it afterwards).
 *
 * <pre>{@code
 * return StagedRun.start(spark, "prune", options.model()).publish(Publisher.preparer(conf, request), log, run -> {
 *   JobStages stages = run.stages(archive.location(), gpuProfile);
 *   ... // the job's stages, writing under run.staging()
 *   return report;
 * });
 * }</pre>
 *
 * Runs nest (shrink then prune): an inner run has a job group of its own and gives the outer
 * run's back when it ends.
 */
public final class StagedRun {
  /** Where a run writes: a private staging folder, then published whole, or aborted. */
  public interface Output {
    /** The run's private folder; nothing outside it is written before {@link #publish}. */
    String staging();

    /** Where the output is published. */
    String location();

    /** Moves the staged output into place. */
    void publish() throws IOException;

    /** Drops what the run staged, after a failure; an earlier output stays as it was. */
    void abort();
  }

  /** Prepares a run's output once its id and probe are known (e.g. {@code Publisher::prepare}). */
  @FunctionalInterface
  public interface OutputPreparer {
    Output prepare(String runId, FaultProbe probe) throws IOException;
  }

  /** A job's stages, run inside the skeleton. */
  @FunctionalInterface
  public interface Body<T> {
    T run(StagedRun run) throws IOException;
  }

  /** Spark's local properties a run sets, restored when it ends (SparkContext's own names). */
  private static final String[] JOB_PROPERTIES = {"spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"};

  private final SparkSession spark;
  private final String job;
  private final String subject;
  private final String runId;
  private final FaultProbe probe;
  private final Optional<Output> output;

  private StagedRun(SparkSession spark, String job, String subject, String runId, FaultProbe probe, Optional<Output> output) {
    this.spark = spark;
    this.job = job;
    this.subject = subject;
    this.runId = runId;
    this.probe = probe;
    this.output = output;
  }

  /**
   * A new run of {@code job} ("prune") on {@code subject} (the model), with a fresh id and the
   * probe the session's runtime settings name.
   */
  public static StagedRun start(SparkSession spark, String job, String subject) {
    return new StagedRun(
        Objects.requireNonNull(spark, "spark is null"), Objects.requireNonNull(job, "job is null"),
        Objects.requireNonNull(subject, "subject is null"), UUID.randomUUID().toString().substring(0, 8), FaultProbe.load(spark.conf()),
        Optional.empty());
  }

  /**
   * Prepares the output, runs the body and publishes what it staged (saying so in the log); on
   * any failure cancels the run's job group, waits for its tasks to stop and aborts the output.
   */
  public <T> T publish(OutputPreparer preparer, ProgressLog log, Body<T> body) throws IOException {
    Output prepared = preparer.prepare(runId, probe);
    StagedRun run = new StagedRun(spark, job, subject, runId, probe, Optional.of(prepared));
    return run.execute(body, Optional.of(Objects.requireNonNull(log, "log is null")));
  }

  /** Runs a body that publishes nothing (its output, if any, is its own), in the run's job group. */
  public <T> T run(Body<T> body) throws IOException {
    return execute(body, Optional.empty());
  }

  private <T> T execute(Body<T> body, Optional<ProgressLog> log) throws IOException {
    SparkContext context = spark.sparkContext();
    String[] previous = new String[JOB_PROPERTIES.length];
    for (int i = 0; i < previous.length; i++) {
      previous[i] = context.getLocalProperty(JOB_PROPERTIES[i]);
    }
    context.setJobGroup(jobGroup(), "sparkprune " + job + " " + subject, false);
    try {
      T result = body.run(this);
      if (output.isPresent()) {
        output.get().publish();
        log.ifPresent(progress -> progress.line("published %s", output.get().location()));
      }
      return result;
    } catch (Throwable e) {
      // Task failures arrive as SparkException, which Java code does not see declared.
      JobGroups.cancelAndAwait(context, jobGroup());
      output.ifPresent(Output::abort);
      throw e;
    } finally {
      for (int i = 0; i < previous.length; i++) {
        context.setLocalProperty(JOB_PROPERTIES[i], previous[i]);
      }
    }
  }

  public String runId() {
    return runId;
  }

  /** The Spark job group of this run's jobs. */
  public String jobGroup() {
    return "sparkprune-" + job + "-" + runId;
  }

  public FaultProbe probe() {
    return probe;
  }

  public SparkSession spark() {
    return spark;
  }

  public JavaSparkContext jsc() {
    return JavaSparkContext.fromSparkContext(spark.sparkContext());
  }

  /** The run's staging folder; only a run started with {@link #publish} has one. */
  public String staging() {
    return output.orElseThrow(() -> new IllegalStateException("Cannot stage files: this " + job + " run publishes no output")).staging();
  }

  /**
   * The run's Spark side for a job on the archive at {@code model}: the executors' context (the
   * Hadoop configuration broadcast once per call) and the GPU profile of its model stages.
   */
  public JobStages stages(String model, Optional<ResourceProfile> gpuProfile) {
    JavaSparkContext jsc = jsc();
    JobContext context = new JobContext(model, staging(), jsc.broadcast(new SerializableConfiguration(spark.sparkContext().hadoopConfiguration())),
        spark.sparkContext().conf().getInt("spark.task.cpus", 1), probe);
    return new JobStages(jsc, context, gpuProfile);
  }

  /** Names the Spark jobs started from this thread from now on, in the UI and the event log. */
  public void describe(String description) {
    spark.sparkContext().setJobDescription(description);
  }
}
