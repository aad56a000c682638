package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.prune.SparkSessions;
import dev.sparkprune.jobs.shrink.ShrinkJob;
import dev.sparkprune.jobs.shrink.ShrinkOptions;
import dev.sparkprune.jobs.shrink.ShrinkReport;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.structure.KeepCounts;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.SparkSession;

/** {@code sparkprune shrink}: structured and expert pruning into a smaller standard archive. */
final class ShrinkCommand {
  static final Set<String> OPTIONS = Set.of(
      "model", "out", "calib", "nsamples", "seqlen", "seed", "drop-layers", "drop-layers-fraction", "layer-metric", "mlp-keep",
      "heads-keep", "width-metric", "experts-keep", "expert-metric", "then-prune", "sparsity", "pattern", "partitions", "master");

  private ShrinkCommand() {}

  static ShrinkOptions options(CommandLine line, Configuration conf) throws IOException {
    line.requireNoPositionals();
    String model = line.require("model");
    ValidationException.check(
        !(line.value("drop-layers").isPresent() && line.value("drop-layers-fraction").isPresent()),
        "Give either --drop-layers or --drop-layers-fraction, not both");
    int drop = 0;
    if (line.value("drop-layers").isPresent()) {
      drop = line.positiveInt("drop-layers", 1);
    } else if (line.value("drop-layers-fraction").isPresent()) {
      double fraction = number("drop-layers-fraction", line.value("drop-layers-fraction").get());
      KeepCounts.checkFraction("--drop-layers-fraction", fraction);
      int blocks = ModelArchive.open(new HadoopFileIO(conf), model).config().requireInt("num_hidden_layers");
      drop = KeepCounts.droppedBlocks(blocks, fraction);
    }
    ShrinkSettings settings = new ShrinkSettings(
        drop,
        ShrinkSettings.LayerMetric.parse(line.value("layer-metric").orElse("angular")),
        number("mlp-keep", line.value("mlp-keep").orElse("1")),
        number("heads-keep", line.value("heads-keep").orElse("1")),
        ShrinkSettings.WidthMetric.parse(line.value("width-metric").orElse("activation")),
        number("experts-keep", line.value("experts-keep").orElse("1")),
        ShrinkSettings.parseExpertMetric(line.value("expert-metric").orElse("reap")));
    String thenPrune = line.value("then-prune").orElse("");
    ValidationException.check(
        thenPrune.isEmpty() || thenPrune.equals("wanda") || thenPrune.equals("sparsegpt"),
        "Invalid --then-prune %s: use wanda or sparsegpt", thenPrune);
    ValidationException.check(
        !thenPrune.isEmpty() || line.value("sparsity").isEmpty() && line.value("pattern").isEmpty(),
        "Cannot use --sparsity or --pattern without --then-prune wanda|sparsegpt");
    ValidationException.check(
        !(line.value("sparsity").isPresent() && line.value("pattern").isPresent()), "Give either --sparsity or --pattern, not both");
    SparsityTarget target = SparsityTarget.parse(line.value("pattern").orElse(line.value("sparsity").orElse("0.5")));
    if (!thenPrune.isEmpty()) {
      PruningMethod.parse(thenPrune);
    }
    long seed;
    try {
      seed = Long.parseLong(line.value("seed").orElse("0"));
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid --seed " + line.value("seed").get() + ": must be an integer");
    }
    return new ShrinkOptions(
        model, line.require("out"), line.require("calib"), line.positiveInt("nsamples", ShrinkOptions.NSAMPLES_DEFAULT),
        line.positiveInt("seqlen", ShrinkOptions.SEQLEN_DEFAULT), seed, settings, thenPrune, target,
        line.value("partitions").isPresent() ? line.positiveInt("partitions", 1) : 0, line.flag("overwrite"));
  }

  private static double number(String option, String text) {
    try {
      return Double.parseDouble(text);
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid --" + option + " " + text + ": must be a number");
    }
  }

  static int run(List<String> args, PrintStream out) throws IOException {
    CommandLine line = CommandLine.parse("shrink", args, OPTIONS, Set.of("overwrite"));
    Configuration conf = SparkSessions.hadoopConfiguration();
    ShrinkOptions options = options(line, conf);
    String master = line.value("master").orElse(null);
    SparkSessions.checkMaster(master);
    // Before Spark starts: a refused request or --out costs no session start-up, and writes nothing.
    ShrinkJob.check(conf, options);
    SparkSession spark = SparkSessions.getOrCreate(master);
    ShrinkReport report = new ShrinkJob(spark, options, out).run();
    report.printSummary(out);
    return Main.EXIT_OK;
  }
}
