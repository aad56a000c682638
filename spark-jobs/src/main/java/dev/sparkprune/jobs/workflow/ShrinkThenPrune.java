package dev.sparkprune.jobs.workflow;

import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.output.Publisher;
import dev.sparkprune.jobs.prune.PruneJob;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.shrink.ShrinkJob;
import dev.sparkprune.jobs.shrink.ShrinkOptions;
import dev.sparkprune.jobs.shrink.ShrinkReport;
import dev.sparkprune.jobs.spark.StagedRun;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Objects;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.SparkSession;

/**
 * {@code sparkprune shrink --then-prune}: the shrink job's stages, then the prune job on the
 * staged shrunk archive, published as one output. It sits above both jobs so that neither
 * imports the other. The prune job runs as a run of its own (its own job group and publish)
 * into a folder of this run's staging folder; its model, masks and report then move into place.
 *
 * <p>Outputs under --out: {@code model/} (shrunk, then pruned), {@code masks/},
 * {@code prune-report.json} and {@code report.json}.
 */
public final class ShrinkThenPrune {
  private final SparkSession spark;
  private final ShrinkOptions options;
  private final PrintStream progress;

  public ShrinkThenPrune(SparkSession spark, ShrinkOptions options, PrintStream progress) {
    this.spark = Objects.requireNonNull(spark, "spark is null");
    this.options = Objects.requireNonNull(options, "options is null");
    this.progress = Objects.requireNonNull(progress, "progress is null");
    if (options.thenPrune().isEmpty()) {
      throw new IllegalArgumentException("Cannot shrink then prune: no --then-prune method");
    }
  }

  public ShrinkReport run() throws IOException {
    return run(ShrinkJob.check(spark.sparkContext().hadoopConfiguration(), options));
  }

  /** Runs on inputs already opened and checked: the CLI checks them before it starts Spark. */
  public ShrinkReport run(ShrinkJob.Inputs inputs) throws IOException {
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    ShrinkJob shrink = new ShrinkJob(spark, options, progress);
    CalibrationSource calibration = shrink.sample(inputs);
    return StagedRun.start(spark, "shrink", options.model()).publish(Publisher.preparer(conf, options.output()), shrink.log(), run -> {
      ShrinkReport report = shrink.shrinkInto(run, inputs, calibration, "shrunk");
      prune(conf, run.staging());
      report.stage("then_prune", shrink.log().seconds());
      return shrink.finish(run, report);
    });
  }

  /**
   * Runs the prune job on the staged shrunk archive, into a staged folder of its own, then moves
   * its model, masks and report into this run's staging folder.
   */
  private void prune(Configuration conf, String staging) throws IOException {
    HadoopFileIO io = new HadoopFileIO(conf);
    String shrunk = io.resolve(staging, "shrunk");
    String pruned = io.resolve(staging, "pruned");
    new PruneJob(spark, pruneOptions(shrunk, pruned), progress).run();
    FileSystem fs = new Path(staging).getFileSystem(conf);
    rename(fs, new Path(pruned, "model"), new Path(staging, "model"));
    rename(fs, new Path(pruned, "masks"), new Path(staging, "masks"));
    rename(fs, new Path(pruned, "report.json"), new Path(staging, "prune-report.json"));
    fs.delete(new Path(pruned), true);
    fs.delete(new Path(shrunk), true);
  }

  /** The prune job's settings: the shrink run's calibration, the --then-prune method and target, the defaults otherwise. */
  PruneOptions pruneOptions(String model, String out) {
    return PruneOptions.builder()
        .model(model)
        .out(out)
        .method(PruningMethod.parse(options.thenPrune()))
        .target(options.thenTarget())
        .calibration(options.calibration())
        .nsamples(options.nsamples())
        .seqlen(options.seqlen())
        .seed(options.seed())
        .partitions(options.partitions())
        .overwrite(false)
        .build();
  }

  private static void rename(FileSystem fs, Path from, Path to) throws IOException {
    if (!fs.rename(from, to)) {
      throw new IOException("Cannot move " + from + " to " + to + " in the staging folder");
    }
  }
}
