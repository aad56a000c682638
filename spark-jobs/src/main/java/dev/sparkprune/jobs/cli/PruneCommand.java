package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.prune.JobInputs;
import dev.sparkprune.jobs.prune.OutputGuard;
import dev.sparkprune.jobs.prune.PruneJob;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.PruneReport;
import dev.sparkprune.jobs.spark.SparkSessions;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.Admm;
import dev.sparkprune.scoring.methods.Dsnot;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.HadoopFileIO;
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
          "gpus-per-task", "gpus-per-executor", "gpu-discovery-script", "gpu-vendor", "moe-calibration", "min-expert-tokens",
          "scoring-task-mb", "update", "admm-iterations", "admm-percdamp",
          "admm-rho", "admm-gradual-steps", "refine", "dsnot-cycles", "dsnot-threshold", "dsnot-var-power", "dsnot-skip");

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
        .moeCalibration(PruneOptions.parseMoeCalibration(line.value("moe-calibration").orElse("routed")))
        .minExpertTokens(line.value("min-expert-tokens").isPresent() ? nonNegativeInt("min-expert-tokens", line.value("min-expert-tokens").get())
            : PruneOptions.MIN_EXPERT_TOKENS_DEFAULT)
        .scoringTaskBytes((long) line.positiveInt("scoring-task-mb", (int) (PruneOptions.SCORING_TASK_BYTES_DEFAULT >> 20)) << 20)
        .refinement(refinement(line))
        .overwrite(line.flag("overwrite"))
        .build();
  }

  /** --update and --refine with their knobs; defaults are the reference implementations'. */
  static Refinement refinement(CommandLine line) {
    Refinement.Update update = Refinement.Update.parse(line.value("update").orElse("none"));
    String refine = line.value("refine").orElse("none").toLowerCase(Locale.ROOT);
    ValidationException.check(refine.equals("dsnot") || refine.equals("none"), "Invalid --refine %s: use dsnot or none", refine);
    int iterations = line.positiveInt("admm-iterations", Admm.DEFAULTS.iterations());
    Admm.Settings admm = new Admm.Settings(
        iterations,
        fraction("admm-percdamp", line.value("admm-percdamp").orElse(String.valueOf(Admm.DEFAULTS.percdamp()))),
        fraction("admm-rho", line.value("admm-rho").orElse(String.valueOf(Admm.DEFAULTS.rho()))),
        line.positiveInt("admm-gradual-steps", Math.min(iterations, Admm.DEFAULTS.gradualSteps())));
    Dsnot.Settings dsnot = new Dsnot.Settings(
        line.positiveInt("dsnot-cycles", Dsnot.DEFAULTS.maxCycles()),
        fraction("dsnot-threshold", line.value("dsnot-threshold").orElse(String.valueOf(Dsnot.DEFAULTS.updateThreshold()))),
        fraction("dsnot-var-power", line.value("dsnot-var-power").orElse(String.valueOf(Dsnot.DEFAULTS.varPower()))));
    String skip = line.value("dsnot-skip").orElse(Refinement.DSNOT_SKIP_DEFAULT);
    return new Refinement(update, admm, refine.equals("dsnot"), dsnot, skip.equals("none") ? "" : skip);
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

  private static int nonNegativeInt(String option, String text) {
    try {
      int value = Integer.parseInt(text);
      ValidationException.check(value >= 0, "Invalid --%s %s: must be 0 or more", option, text);
      return value;
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid --" + option + " " + text + ": must be an integer");
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
    String master = line.value("master").orElse(null);
    SparkSessions.checkMaster(master);
    org.apache.hadoop.conf.Configuration conf = SparkSessions.hadoopConfiguration();
    // Before Spark starts: a refused --out costs no session start-up.
    OutputGuard.check(conf, options);
    // The model, plan, tokenizer and calibration source are checked before Spark starts.
    JobInputs inputs = JobInputs.open(new HadoopFileIO(conf), options);
    SparkSession spark = SparkSessions.getOrCreate(master);
    PruneReport report = new PruneJob(spark, options, out).run(inputs);
    report.printSummary(out);
    return Main.EXIT_OK;
  }
}
