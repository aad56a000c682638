package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.calibration.SparkExecutors;
import dev.sparkprune.jobs.options.OptionValues;
import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.jobs.prune.HadoopInputs;
import dev.sparkprune.jobs.prune.PruneKeys;
import dev.sparkprune.jobs.prune.PruneOptionsResolver;
import dev.sparkprune.jobs.prune.JobInputs;
import dev.sparkprune.jobs.output.OutputGuard;
import dev.sparkprune.jobs.prune.PruneJob;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.output.PruneReport;
import dev.sparkprune.jobs.spark.SparkSessions;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Model.CommandSpec;

/** {@code sparkprune prune}: the distributed prune job (in-process local[*] without --master). */
final class PruneCommand implements Subcommand {
  private final CommandSpec spec;

  PruneCommand() {
    spec = Specs.command(this, "prune", "Prune every linear; masks as Parquet, a pruned archive, report.json.");
    spec.usageMessage().footer("", "An existing --out is replaced only if it is a sparkprune output (or with --overwrite); never one",
        "that is, holds or lies in an input. Tuning keys can also be set as spark.sparkprune.<option> in the",
        "Spark conf; the command line wins.");
    Specs.keys(spec, PruneKeys.ALL);
    spec.addOption(Specs.master());
  }

  @Override
  public CommandSpec spec() {
    return spec;
  }

  /**
   * The options of a prune command line: the given keys, then the {@code spark.sparkprune.*}
   * conf (spark-submit passes it as system properties, read before any session starts), then
   * the defaults.
   */
  static PruneOptions options(Arguments arguments, PruneOptionsResolver.Inputs inputs) throws IOException {
    Map<String, String> given = arguments.given(PruneKeys.ALL);
    return new PruneOptionsResolver(OptionValues.confEntries(new SparkConf()), inputs).resolve(given);
  }

  @Override
  public int run(Arguments arguments, PrintStream out) throws IOException {
    ConfKeys.checkKnown(new SparkConf());
    org.apache.hadoop.conf.Configuration conf = SparkSessions.hadoopConfiguration();
    PruneOptions options = options(arguments, new HadoopInputs(new HadoopFileIO(conf)));
    String master = arguments.value("master").orElse(null);
    SparkSessions.checkMaster(master);
    // Before Spark starts: a refused --out costs no session start-up.
    OutputGuard.check(conf, options.output());
    // The model, tokenizer, calibration source and the run plan (memory per stage, from headers and the
    // executor shape) are checked before Spark starts: a run that cannot fit is refused now, not by an OOM.
    SparkConf sparkConf = new SparkConf();
    ExecutorShape executor = SparkExecutors.of(master, sparkConf);
    JobInputs inputs = JobInputs.open(new HadoopFileIO(conf), options, executor, SparkExecutors.defaultParallelism(executor, sparkConf));
    SparkSession spark = SparkSessions.getOrCreate(master);
    PruneReport report = new PruneJob(spark, options, out).run(inputs);
    report.printSummary(out);
    return Main.EXIT_OK;
  }
}
