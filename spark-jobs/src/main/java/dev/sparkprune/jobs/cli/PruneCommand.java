package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.calibration.ExpertSharding;
import dev.sparkprune.jobs.options.OptionValues;
import dev.sparkprune.jobs.plan.ExpertPlan;
import dev.sparkprune.jobs.prune.HadoopInputs;
import dev.sparkprune.jobs.prune.PruneKeys;
import dev.sparkprune.jobs.prune.PruneOptionsResolver;
import dev.sparkprune.jobs.prune.JobInputs;
import dev.sparkprune.jobs.prune.plan.ExecutorShapes;
import dev.sparkprune.jobs.prune.plan.MemoryPlan;
import dev.sparkprune.jobs.output.OutputGuard;
import dev.sparkprune.jobs.calibration.CalibrationMemory;
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
    // The model, plan, tokenizer and calibration source are checked before Spark starts.
    SparkConf sparkConf = new SparkConf();
    CalibrationMemory.Executors executors = CalibrationMemory.Executors.of(master, sparkConf);
    JobInputs inputs = JobInputs.open(new HadoopFileIO(conf), options, executors, executors.defaultParallelism(sparkConf));
    // The memory plan from headers and the executor's shape: a run that cannot fit is refused now, not by an OOM.
    // An expert task that cannot fit even one expert is refused by the expert plan; the blocks it
    // shards are not held whole by a calibration task, so the memory plan leaves them to it.
    java.util.function.IntPredicate expertParallel = block -> false;
    if (inputs.needsCalibration && options.statistics().isEmpty()) {
      ExpertPlan experts = inputs.expertPlan(options, ExpertSharding.executor(master, sparkConf), options.partitions());
      experts.checkFits();
      expertParallel = experts::sharded;
    }
    MemoryPlan.of(inputs.archive, inputs.layout, options.memorySettings(), ExecutorShapes.of(sparkConf, master))
        .checkFits("Cannot prune " + options.model(), expertParallel);
    SparkSession spark = SparkSessions.getOrCreate(master);
    PruneReport report = new PruneJob(spark, options, out).run(inputs);
    report.printSummary(out);
    return Main.EXIT_OK;
  }
}
