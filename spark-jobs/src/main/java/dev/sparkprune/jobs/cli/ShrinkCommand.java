package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.calibration.SparkExecutors;
import dev.sparkprune.jobs.options.Locations;
import dev.sparkprune.jobs.options.OptionValues;
import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.jobs.shrink.ShrinkJob;
import dev.sparkprune.jobs.shrink.ShrinkKeys;
import dev.sparkprune.jobs.shrink.ShrinkOptions;
import dev.sparkprune.jobs.shrink.ShrinkOptionsResolver;
import dev.sparkprune.jobs.shrink.ShrinkReport;
import dev.sparkprune.jobs.spark.SparkSessions;
import dev.sparkprune.jobs.workflow.ShrinkThenPrune;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Model.CommandSpec;

/** {@code sparkprune shrink}: structured and expert pruning into a smaller standard archive. */
final class ShrinkCommand implements Subcommand {
  private final CommandSpec spec;

  ShrinkCommand() {
    spec = Specs.command(this, "shrink",
        "Remove whole blocks, MLP channels, KV head groups and experts: a smaller standard archive in model/, report.json.");
    spec.usageMessage().footer("", "Every kept block keeps the same counts, so config.json stays a standard one. The output folder",
        "follows prune's rules (never an input; replaced only if it is a sparkprune output or with --overwrite).");
    Specs.keys(spec, ShrinkKeys.ALL);
    spec.addOption(Specs.master());
  }

  @Override
  public CommandSpec spec() {
    return spec;
  }

  static ShrinkOptions options(Arguments line, Configuration conf) throws IOException {
    // Locations qualified on the driver: executors run in folders of their own.
    Map<String, String> given = Locations.qualify(line.given(ShrinkKeys.ALL), ShrinkKeys.LOCATIONS, conf);
    return new ShrinkOptionsResolver(OptionValues.confEntries(new SparkConf()), new HadoopFileIO(conf)).resolve(given);
  }

  @Override
  public int run(Arguments line, PrintStream out) throws IOException {
    ConfKeys.checkKnown(new SparkConf());
    Configuration conf = SparkSessions.hadoopConfiguration();
    ShrinkOptions options = options(line, conf);
    String master = line.value("master").orElse(null);
    SparkSessions.checkMaster(master);
    // Before Spark starts: a refused request or --out costs no session start-up, and writes nothing.
    SparkConf sparkConf = new SparkConf();
    ExecutorShape executors = SparkExecutors.of(master, sparkConf);
    ShrinkJob.Inputs inputs = ShrinkJob.check(conf, options, executors, SparkExecutors.defaultParallelism(executors, sparkConf));
    SparkSession spark = SparkSessions.getOrCreate(master);
    ShrinkReport report = options.thenPrune().isEmpty()
        ? new ShrinkJob(spark, options, out).run(inputs)
        : new ShrinkThenPrune(spark, options, out).run(inputs);
    report.printSummary(out);
    return Main.EXIT_OK;
  }
}
