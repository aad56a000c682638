package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import dev.sparkprune.tensorio.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad shrink requests: one line, exit 2, nothing written, before Spark starts. */
class TestShrinkCommand {
  @TempDir Path dir;

  private String[] args(String... extra) {
    String[] base = {
      "shrink", "--model", SharedData.stories260K().toString(), "--out", dir.resolve("out").toString(),
      "--calib", SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), "--seqlen", "64", "--nsamples", "4"};
    String[] all = new String[base.length + extra.length];
    System.arraycopy(base, 0, all, 0, base.length);
    System.arraycopy(extra, 0, all, base.length, extra.length);
    return all;
  }

  private void assertRefused(String[] args, String message) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    String error = err.toString(StandardCharsets.UTF_8);
    assertThat(code).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(error).isEqualTo("sparkprune: error: " + message + System.lineSeparator());
    assertThat(dir.resolve("out")).doesNotExist();
    assertThat(dir.toFile().list()).isEmpty();
  }

  @Test
  void refusesRequestsThatRemoveEverything() {
    assertRefused(args("--drop-layers", "5"),
        "Cannot drop 5 of 5 blocks: that removes every block; the last block is always kept, so drop at most 4");
    assertRefused(args("--drop-layers-fraction", "1"),
        "Cannot drop 5 of 5 blocks (a fraction of 1.0): that removes every block; the last block is always kept");
  }

  @Test
  void refusesFractionsOutsideTheUnitInterval() {
    assertRefused(args("--mlp-keep", "1.5"), "Invalid --mlp-keep 1.5: give a fraction in (0, 1] of the structures to keep");
    assertRefused(args("--heads-keep", "0"), "Invalid --heads-keep 0: give a fraction in (0, 1] of the structures to keep");
  }

  @Test
  void refusesARequestThatRemovesNothing() {
    assertRefused(args(), "Cannot shrink: nothing to remove; give --target-params, --drop-layers, --mlp-keep, --heads-keep or --experts-keep");
    assertRefused(args("--drop-layers", "1", "--drop-layers-fraction", "0.2"), "Give either --drop-layers or --drop-layers-fraction, not both");
    assertRefused(args("--mlp-keep", "0.5", "--sparsity", "0.5"), "Cannot use --sparsity or --pattern without --then-prune wanda|sparsegpt");
  }

  @Test
  void refusesABadSizeBudget() {
    assertRefused(args("--target-params", "1"), "Invalid --target-params 1: give a fraction in (0, 1), e.g. 0.7");
    assertRefused(args("--target-params", "0"), "Invalid --target-params 0: give a fraction in (0, 1), e.g. 0.7");
    assertRefused(args("--target-active-params", "-0.5"), "Invalid --target-active-params -0.5: give a fraction in (0, 1), e.g. 0.7");
    assertRefused(args("--target-params", "0.7", "--mlp-keep", "0.5"), "Give either --target-params or --mlp-keep, not both");
    assertRefused(args("--target-params", "0.7", "--drop-layers", "1"), "Give either --target-params or --drop-layers, not both");
    assertRefused(args("--target-active-params", "0.7", "--experts-keep", "0.5"),
        "Give either --target-active-params or --experts-keep, not both");
    assertRefused(args("--target-params", "0.7", "--target-active-params", "0.7"),
        "Give either --target-params or --target-active-params, not both");
    assertRefused(args("--target-params", "0.7", "--width-metric", "taylor"),
        "Cannot use --target-params with a taylor metric: the search scores candidates without gradients; use another --width-metric or"
            + " --layer-metric");
    assertRefused(args("--target-params", "0.7", "--then-prune", "wanda"), "Cannot use --target-params with --then-prune: run shrink, then"
        + " prune its model/");
    assertRefused(args("--target-active-params", "0.7"), "Cannot use --target-active-params on file:" + SharedData.stories260K()
        + ": model_type 'llama' has no routed experts, so every parameter is active; use --target-params");
  }

  @Test
  void refusesAnUnknownRepair() {
    assertRefused(args("--mlp-keep", "0.5", "--repair", "lsq"), "Invalid --repair lsq: use ls or none");
  }

  /**
   * The run plan before Spark starts: one block of a generated Llama (hidden 256, MLP 1024) is
   * 4.2 MB as float and calibration holds two per executor, more than the 4 MiB a 304 MiB
   * local-cluster executor leaves after Spark's 300 MiB; the cached windows (1 x 8 tokens) fit.
   */
  @Test
  void refusesARunWhoseBlocksCannotFitTheExecutorsBeforeSparkStarts(@TempDir Path models) throws java.io.IOException {
    Path model = models.resolve("llama");
    int hidden = 256;
    int intermediate = 1024;
    SyntheticArchive.builder(SyntheticArchive.llamaConfig(hidden, 2, 4, 4, intermediate, 512)).seed(1).build()
        .write(new LocalFileIO(), model.toString());
    SyntheticArchive.writeByteLevelTokenizer(new LocalFileIO(), model.toString());
    // A block's parameters: q, k, v, o (H x H each), gate, up, down (H x I each), two norms (H each); 4 bytes each as float.
    long blockFloat = 4L * (4L * hidden * hidden + 3L * hidden * intermediate + 2L * hidden);
    String[] args = {"shrink", "--model", model.toString(), "--out", dir.resolve("out").toString(), "--calib",
        SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), "--seqlen", "8", "--nsamples", "1", "--mlp-keep", "0.5",
        "--master", "local-cluster[1,1,304]"};
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(err.toString(StandardCharsets.UTF_8))
        .startsWith("sparkprune: error: Cannot shrink file:" + model + ": block 0 needs about ")
        .contains("(2 blocks of " + dev.sparkprune.jobs.plan.MemoryPlan.gib(blockFloat) + " decoded as float")
        .contains("more than the " + dev.sparkprune.jobs.plan.MemoryPlan.gib(4L << 20)
            + " an executor leaves (local-cluster[1,1,304]: executor memory from the master URL); raise the local-cluster worker memory")
        .hasLineCount(1);
    assertThat(dir.toFile().list()).isEmpty();
  }

  @Test
  void refusesExpertsOnADenseModel() {
    assertRefused(args("--experts-keep", "0.5"), "Cannot remove experts of llama: model_type llama has no experts");
  }

  @Test
  void defaultsKeepEverythingAndScoreByActivationsAngularDistanceAndReap() throws java.io.IOException {
    var parsed = Main.commandLine().parseArgs("shrink", "--model", "m", "--out", "o", "--calib", "c", "--mlp-keep", "0.5").subcommand();
    dev.sparkprune.jobs.shrink.ShrinkOptions options = ShrinkCommand.options(new Arguments(parsed), new org.apache.hadoop.conf.Configuration());
    var settings = options.settings();
    assertThat(settings.dropBlocks()).isZero();
    assertThat(settings.layerMetric()).isEqualTo(dev.sparkprune.scoring.structure.ShrinkSettings.LayerMetric.ANGULAR);
    assertThat(settings.mlpKeep()).isEqualTo(0.5);
    assertThat(settings.headsKeep()).isEqualTo(1.0);
    assertThat(settings.expertsKeep()).isEqualTo(1.0);
    assertThat(settings.widthMetric()).isEqualTo(dev.sparkprune.scoring.structure.ShrinkSettings.WidthMetric.ACTIVATION);
    assertThat(settings.expertMetric()).isEqualTo(dev.sparkprune.scoring.structure.ExpertSaliency.Metric.REAP);
    assertThat(options.nsamples()).isEqualTo(128);
    assertThat(options.seqlen()).isEqualTo(2048);
    assertThat(options.seed()).isZero();
    assertThat(options.repair()).as("--repair ls by default").isTrue();
    assertThat(options.thenPrune()).isEmpty();
    assertThat(options.partitions()).isZero();
    assertThat(options.overwrite()).isFalse();
    assertThat(options.expertTaskBytes()).as("derived from executor memory").isZero();
    var budget = Main.commandLine().parseArgs("shrink", "--model", "m", "--out", "o", "--calib", "c", "--experts-keep", "0.5",
        "--expert-task-mb", "48").subcommand();
    assertThat(ShrinkCommand.options(new Arguments(budget), new org.apache.hadoop.conf.Configuration()).expertTaskBytes()).isEqualTo(48L << 20);
  }

  @Test
  void refusesAnUnknownThenPruneMethod() {
    assertRefused(args("--mlp-keep", "0.5", "--then-prune", "magnitude"), "Invalid --then-prune magnitude: use wanda or sparsegpt");
  }

  @Test
  void refusesHeadsNotDivisibleIntoGroups(@TempDir Path models) throws java.io.IOException {
    Path model = models.resolve("odd-heads");
    java.nio.file.Files.createDirectories(model);
    SyntheticArchive.builder(SyntheticArchive.llamaConfig(48, 2, 6, 3, 32, 64)).build().write(new LocalFileIO(), model.toString());
    // A config no loader accepts: 6 query heads cannot share 4 KV heads evenly.
    java.nio.file.Files.writeString(model.resolve("config.json"), SyntheticArchive.llamaConfig(48, 2, 6, 4, 32, 64).toString());
    String[] args = args("--heads-keep", "0.5");
    args[2] = model.toString();
    // Locations are qualified on the driver (file: URIs), and messages name them so.
    assertRefused(args, "Cannot shrink file:" + model + "/config.json: num_attention_heads 6 is not divisible into num_key_value_heads 4 groups");
  }
}
