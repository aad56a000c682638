package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.prune.OutputGuard;
import dev.sparkprune.jobs.prune.PruneJob;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.PruneReport;
import dev.sparkprune.jobs.prune.SparkSessions;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.apache.spark.sql.SparkSession;

/** {@code sparkprune prune}: the distributed prune job (in-process local[*] without --master). */
final class PruneCommand {
  static final Set<String> OPTIONS =
      Set.of("model", "out", "method", "sparsity", "pattern", "calib", "nsamples", "seqlen", "seed", "mode", "master", "partitions", "stats", "allocation", "min-keep", "config", "owl-lambda", "owl-m", "group",
          "gpus-per-task", "gpus-per-executor", "gpu-discovery-script", "gpu-vendor");

  private PruneCommand() {}

  static PruneOptions options(CommandLine line) {
    line.requireNoPositionals();
    ValidationException.check(
        !(line.value("sparsity").isPresent() && line.value("pattern").isPresent()), "Give either --sparsity or --pattern, not both");
    SparsityTarget target = line.value("pattern").map(PruneCommand::pattern)
        .orElseGet(() -> SparsityTarget.parse(line.value("sparsity").orElse("0.5")));
    // Saved statistics are dense ones: --stats alone means one-shot.
    PruneOptions.Mode mode = PruneOptions.Mode.parse(line.value("mode").orElse(line.value("stats").isPresent() ? "one-shot" : "sequential"));
    long seed;
    try {
      seed = Long.parseLong(line.value("seed").orElse("0"));
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid --seed " + line.value("seed").get() + ": must be an integer");
    }
    return PruneOptions.builder()
        .model(line.require("model"))
        .out(line.require("out"))
        .method(PruningMethod.parse(line.require("method")))
        .target(target)
        .calibration(line.value("calib").orElse(null))
        .nsamples(line.positiveInt("nsamples", PruneOptions.NSAMPLES_DEFAULT))
        .seqlen(line.positiveInt("seqlen", PruneOptions.SEQLEN_DEFAULT))
        .seed(seed)
        .mode(mode)
        .partitions(line.value("partitions").isPresent() ? line.positiveInt("partitions", 1) : 0)
        .saveStatistics(line.flag("save-stats"))
        .statistics(line.value("stats").orElse(null))
        .config(line.value("config").orElse(null))
        .wandaGroup(group(line.value("group").orElse("row")))
        .allocation(PruneOptions.Allocation.parse(line.value("allocation").orElse("uniform")))
        .minKeep(fraction("min-keep", line.value("min-keep").orElse(String.valueOf(PruneOptions.MIN_KEEP_DEFAULT))))
        .owlLambda(fraction("owl-lambda", line.value("owl-lambda").orElse(String.valueOf(PruneOptions.OWL_LAMBDA_DEFAULT))))
        .owlM(fraction("owl-m", line.value("owl-m").orElse(String.valueOf(PruneOptions.OWL_M_DEFAULT))))
        .gpusPerTask(fraction("gpus-per-task", line.value("gpus-per-task").orElse("0")))
        .gpusPerExecutor(line.value("gpus-per-executor").isPresent() ? line.positiveInt("gpus-per-executor", 1) : 0)
        .gpuDiscoveryScript(line.value("gpu-discovery-script").orElse(null))
        .gpuVendor(line.value("gpu-vendor").orElse(null))
        .overwrite(line.flag("overwrite"))
        .build();
  }

  private static dev.sparkprune.scoring.methods.Wanda.Group group(String text) {
    switch (text.toLowerCase(Locale.ROOT)) {
      case "row":
        return dev.sparkprune.scoring.methods.Wanda.Group.ROW;
      case "layer":
        return dev.sparkprune.scoring.methods.Wanda.Group.MATRIX;
      default:
        throw new ValidationException("Invalid --group " + text + ": use row or layer");
    }
  }

  private static double fraction(String option, String text) {
    try {
      return Double.parseDouble(text);
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid --" + option + " " + text + ": must be a number");
    }
  }

  private static SparsityTarget pattern(String text) {
    ValidationException.check(text.contains(":"), "Invalid --pattern %s: expected N:M such as 2:4", text);
    return SparsityTarget.parse(text);
  }

  static int run(List<String> args, PrintStream out) throws IOException {
    CommandLine line = CommandLine.parse("prune", args, OPTIONS, Set.of("save-stats", "overwrite"));
    PruneOptions options = options(line);
    // Before Spark starts: a refused --out costs no session start-up.
    OutputGuard.check(SparkSessions.hadoopConfigurationBeforeStart(), options);
    SparkSession spark = SparkSessions.getOrCreate(line.value("master").orElse(null));
    PruneReport report = new PruneJob(spark, options, out).run();
    report.printSummary(out);
    return Main.EXIT_OK;
  }
}
