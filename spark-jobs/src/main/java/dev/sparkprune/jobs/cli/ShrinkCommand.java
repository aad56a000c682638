package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.options.Locations;
import dev.sparkprune.jobs.options.PruneKeys;
import dev.sparkprune.jobs.spark.SparkSessions;
import dev.sparkprune.jobs.shrink.ShrinkJob;
import dev.sparkprune.jobs.shrink.ShrinkKeys;
import dev.sparkprune.jobs.shrink.ShrinkOptions;
import dev.sparkprune.jobs.shrink.ShrinkReport;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.structure.KeepCounts;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.PrintStream;
import org.apache.hadoop.conf.Configuration;
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
    String model = Locations.qualify(line.require("model"), conf);
    ValidationException.check(
        !(line.has("drop-layers") && line.has("drop-layers-fraction")), "Give either --drop-layers or --drop-layers-fraction, not both");
    int drop = 0;
    if (line.has("drop-layers")) {
      drop = line.positiveInt("drop-layers", 1);
    } else if (line.has("drop-layers-fraction")) {
      double fraction = number("drop-layers-fraction", line.value("drop-layers-fraction").get());
      KeepCounts.checkFraction("--drop-layers-fraction", fraction);
      int blocks = ModelArchive.open(new HadoopFileIO(conf), model).config().requireInt("num_hidden_layers");
      drop = KeepCounts.droppedBlocks(blocks, fraction);
    }
    ShrinkSettings settings = new ShrinkSettings(
        drop,
        ShrinkSettings.LayerMetric.parse(line.value("layer-metric").orElse(ShrinkKeys.LAYER_METRIC_DEFAULT)),
        number("mlp-keep", line.value("mlp-keep").orElse("1")),
        number("heads-keep", line.value("heads-keep").orElse("1")),
        ShrinkSettings.WidthMetric.parse(line.value("width-metric").orElse(ShrinkKeys.WIDTH_METRIC_DEFAULT)),
        number("experts-keep", line.value("experts-keep").orElse("1")),
        ShrinkSettings.parseExpertMetric(line.value("expert-metric").orElse(ShrinkKeys.EXPERT_METRIC_DEFAULT)));
    String thenPrune = line.value("then-prune").orElse("");
    ValidationException.check(
        thenPrune.isEmpty() || thenPrune.equals("wanda") || thenPrune.equals("sparsegpt"),
        "Invalid --then-prune %s: use wanda or sparsegpt", thenPrune);
    ValidationException.check(
        !thenPrune.isEmpty() || !line.has("sparsity") && !line.has("pattern"),
        "Cannot use --sparsity or --pattern without --then-prune wanda|sparsegpt");
    SparsityTarget target = SparsityTarget.parse(
        line.value("pattern").orElse(line.value("sparsity").orElse(String.valueOf(PruneKeys.SPARSITY_DEFAULT))));
    long seed;
    try {
      seed = Long.parseLong(line.value("seed").orElse(String.valueOf(PruneKeys.SEED_DEFAULT)));
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid --seed " + line.value("seed").get() + ": must be an integer");
    }
    return new ShrinkOptions(
        model, Locations.qualify(line.require("out"), conf), Locations.qualify(line.require("calib"), conf),
        line.positiveInt("nsamples", PruneKeys.NSAMPLES_DEFAULT),
        line.positiveInt("seqlen", PruneKeys.SEQLEN_DEFAULT), seed, settings, thenPrune, target,
        line.has("partitions") ? line.positiveInt("partitions", 1) : 0, line.flag("overwrite"));
  }

  private static double number(String option, String text) {
    try {
      return Double.parseDouble(text);
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid --" + option + " " + text + ": must be a number");
    }
  }

  @Override
  public int run(Arguments line, PrintStream out) throws IOException {
    Configuration conf = SparkSessions.hadoopConfiguration();
    ShrinkOptions options = options(line, conf);
    String master = line.value("master").orElse(null);
    SparkSessions.checkMaster(master);
    // Before Spark starts: a refused request or --out costs no session start-up, and writes nothing.
    ShrinkJob.Inputs inputs = ShrinkJob.check(conf, options);
    SparkSession spark = SparkSessions.getOrCreate(master);
    ShrinkReport report = new ShrinkJob(spark, options, out).run(inputs);
    report.printSummary(out);
    return Main.EXIT_OK;
  }
}
