package dev.sparkprune.jobs.shrink;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.jobs.calibration.CalibrationSamples;
import dev.sparkprune.jobs.gradient.SingleProcessGradients;
import dev.sparkprune.scoring.grad.GradientStatistics;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.ExpertSaliency;
import dev.sparkprune.scoring.structure.ShrinkDecision;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.scoring.structure.StructureCalibration;
import dev.sparkprune.scoring.structure.WidthScores;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shrink job on stories260K calibrated on TinyStories, against the same steps run in one process. */
class TestShrinkJob extends SparkTestBase {
  private static final LocalFileIO IO = new LocalFileIO();

  @TempDir Path dir;

  private static ShrinkOptions options(Path out, ShrinkSettings settings, String thenPrune) {
    return new ShrinkOptions(
        SharedData.stories260K().toString(), out.toString(), SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(),
        8, 64, 3, settings, thenPrune, SparsityTarget.parse("0.5"), 2, false, false);
  }

  private static ShrinkSettings settings(int drop, double mlpKeep, double headsKeep) {
    return new ShrinkSettings(
        drop, ShrinkSettings.LayerMetric.ANGULAR, mlpKeep, headsKeep, ShrinkSettings.WidthMetric.ACTIVATION, 1, ExpertSaliency.Metric.REAP);
  }

  @Test
  void shrunkArchiveEqualsTheSameStepsInOneProcess() throws IOException {
    Path out = dir.resolve("out");
    ShrinkOptions options = options(out, settings(1, 0.75, 0.75), "");
    new ShrinkJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();

    // The same samples, chunks and choice, in this process.
    ModelArchive source = ModelArchive.open(IO, options.model());
    ModelShape shape = ModelShape.of(source.config());
    int[][] samples = CalibrationSamples.sample(
        new HadoopFileIO(new Configuration()), options.calibration(), TokenizerLoader.load(source), 8, 64, 3);
    Map<Integer, int[][]> chunks = new HashMap<>();
    for (int c = 0; c < 8; c++) {
      chunks.put(c, Arrays.copyOfRange(samples, c, c + 1));
    }
    ChunkSummary summary;
    try (DecoderModel model = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
      summary = ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, chunks, 1));
    }
    ShrinkDecision decision = ShrinkDecision.choose(shape, options.settings(), summary);
    Path expected = dir.resolve("expected");
    Files.createDirectories(expected);
    new ShrunkArchive(source, decision.plan()).writeTo(IO, expected.toString());

    Path model = out.resolve("model");
    assertThat(Files.readAllBytes(model.resolve("model.safetensors"))).isEqualTo(Files.readAllBytes(expected.resolve("model.safetensors")));
    assertThat(Files.readString(model.resolve("config.json"))).isEqualTo(Files.readString(expected.resolve("config.json")));
    assertThat(model.resolve("tokenizer.json")).exists();
    assertThat(out.resolve("_SPARKPRUNE_SUCCESS")).exists();

    JsonNode report = new ObjectMapper().readTree(out.resolve("report.json").toFile());
    assertThat(report.get("dropped_blocks").get(0).intValue()).isEqualTo(decision.droppedBlocks().get(0));
    assertThat(report.get("parameters_before").longValue()).isEqualTo(260_032L);
    assertThat(report.get("shrunk_shape").get("intermediate_size").intValue()).isEqualTo(128);
    assertThat(report.get("shrunk_shape").get("num_key_value_heads").intValue()).isEqualTo(3);
    assertThat(report.get("blocks")).hasSize(4);
    assertThat(report.get("blocks").get(0).get("mlp_channels").get("scores")).hasSize(172);
    JsonNode config = new ObjectMapper().readTree(model.resolve("config.json").toFile());
    assertThat(config.get("num_hidden_layers").intValue()).isEqualTo(4);
    assertThat(config.get("num_attention_heads").intValue()).isEqualTo(6);
  }

  /** Both taylor metrics in one run: the dropped block and the width scores against the single-process gradients. */
  @Test
  void taylorScoresEqualADirectComputationFromTheSingleProcessGradients() throws IOException {
    Path out = dir.resolve("taylor");
    ShrinkOptions options = options(out, new ShrinkSettings(
        1, ShrinkSettings.LayerMetric.TAYLOR, 0.75, 0.75, ShrinkSettings.WidthMetric.TAYLOR, 1, ExpertSaliency.Metric.REAP), "");
    ByteArrayOutputStream progress = new ByteArrayOutputStream();
    new ShrinkJob(spark, options, new PrintStream(progress, true, StandardCharsets.UTF_8)).run();
    assertThat(progress.toString(StandardCharsets.UTF_8)).contains("gradients: backward pass of 8 samples x 64 tokens in 8 chunks");

    // G of the dense model in one process (chunks of one sample, the pairwise fold), then |W . mean g| summed directly.
    ModelArchive source = ModelArchive.open(IO, options.model());
    int[][] samples = CalibrationSamples.sample(
        new HadoopFileIO(new Configuration()), options.calibration(), TokenizerLoader.load(source), 8, 64, 3);
    SingleProcessGradients reference = SingleProcessGradients.of(options.model(), samples, 1);
    Map<String, GradientStatistics> gradients = reference.statistics();
    JsonNode report = new ObjectMapper().readTree(out.resolve("report.json").toFile());
    assertThat(report.get("configuration").get("width_metric").asText()).isEqualTo("taylor");
    assertThat(report.get("configuration").get("layer_metric").asText()).isEqualTo("taylor");
    // The dropped block: the lowest |mean removal change| of blocks 0-3 (the last is never dropped).
    int lowest = 0;
    for (int b = 0; b < 5; b++) {
      double importance = Math.abs(reference.removal()[b] / 8);
      assertThat(report.get("block_removal_importance").get(b).asDouble()).as("block %d removal importance", b).isEqualTo(importance);
      if (b < 4 && importance < Math.abs(reference.removal()[lowest] / 8)) {
        lowest = b;
      }
    }
    assertThat(report.get("dropped_blocks")).hasSize(1);
    assertThat(report.get("dropped_blocks").get(0).asInt()).isEqualTo(lowest);
    try (SafetensorsReader weights = source.openShard("model.safetensors")) {
      for (int kept = 0; kept < 4; kept++) {
        JsonNode block = report.get("blocks").get(kept);
        int b = block.get("source_block").asInt();
        String prefix = "model.layers." + b + ".";
        double[] channels = new double[172];
        double[] groups = new double[4];
        for (String name : new String[] {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "self_attn.q_proj", "self_attn.k_proj",
            "self_attn.v_proj", "self_attn.o_proj"}) {
          float[] w = weights.readFloats(prefix + name + ".weight");
          double[] g = gradients.get(prefix + name + ".weight").meanGradient();
          int cols = name.equals("mlp.down_proj") ? 172 : 64;
          for (int i = 0; i < w.length; i++) {
            double salience = Math.abs(w[i] * g[i]);
            int row = i / cols;
            int col = i % cols;
            switch (name) {
              case "mlp.gate_proj", "mlp.up_proj" -> channels[row] += salience;
              case "mlp.down_proj" -> channels[col] += salience;
              // 8 query heads of 8 dimensions, 4 KV heads: query head h is in group h / 2.
              case "self_attn.q_proj" -> groups[row / 16] += salience;
              case "self_attn.o_proj" -> groups[col / 16] += salience;
              default -> groups[row / 8] += salience;
            }
          }
        }
        assertScores(block.get("mlp_channels").get("scores"), channels, "block " + b + " MLP channels");
        assertScores(block.get("kv_groups").get("scores"), groups, "block " + b + " KV groups");
        assertThat(new ObjectMapper().convertValue(block.get("mlp_channels").get("kept_indices"), int[].class))
            .isEqualTo(WidthScores.topIndices(channels, 128));
        assertThat(new ObjectMapper().convertValue(block.get("kv_groups").get("kept_indices"), int[].class))
            .isEqualTo(WidthScores.topIndices(groups, 3));
      }
    }
    // The gradients were the run's own: dropped before publishing.
    try (var files = Files.walk(out)) {
      assertThat(files.map(Path::toString)).noneMatch(path -> path.contains("gradients"));
    }
  }

  private static void assertScores(JsonNode actual, double[] expected, String what) {
    assertThat(actual).as(what).hasSize(expected.length);
    for (int i = 0; i < expected.length; i++) {
      assertThat(actual.get(i).asDouble()).as("%s [%d]", what, i).isCloseTo(expected[i], org.assertj.core.data.Offset.offset(1e-12 * expected[i]));
    }
  }

  @Test
  void keepsHalfTheExpertsOfAMoeFixtureByReap() throws IOException {
    Path out = dir.resolve("moe");
    ShrinkOptions options = new ShrinkOptions(
        ModelFixtures.path("qwen3_moe").toString(), out.toString(), SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(),
        4, 32, 3, new ShrinkSettings(0, ShrinkSettings.LayerMetric.ANGULAR, 1, 1, ShrinkSettings.WidthMetric.ACTIVATION, 0.5,
            ExpertSaliency.Metric.REAP), "", SparsityTarget.parse("0.5"), 2, false, false);
    new ShrinkJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
    ModelArchive source = ModelArchive.open(IO, options.model());
    ModelShape shape = ModelShape.of(source.config());
    int[][] samples = CalibrationSamples.sample(
        new HadoopFileIO(new Configuration()), options.calibration(), TokenizerLoader.load(source), 4, 32, 3);
    Map<Integer, int[][]> chunks = new HashMap<>();
    for (int c = 0; c < 4; c++) {
      chunks.put(c, Arrays.copyOfRange(samples, c, c + 1));
    }
    try (DecoderModel model = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
      ShrinkDecision decision = ShrinkDecision.choose(
          shape, options.settings(), ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, chunks, 0)));
      JsonNode report = new ObjectMapper().readTree(out.resolve("report.json").toFile());
      for (int b = 0; b < shape.blocks(); b++) {
        JsonNode experts = report.get("blocks").get(b).get("experts");
        assertThat(experts.get("kept").intValue()).isEqualTo(4);
        assertThat(new ObjectMapper().convertValue(experts.get("kept_indices"), int[].class))
            .isEqualTo(decision.plan().blocks().get(b).experts());
      }
    }
    ModelArchive shrunk = ModelArchive.open(IO, out.resolve("model").toString());
    assertThat(shrunk.config().requireInt("num_experts")).isEqualTo(4);
    assertThat(shrunk.totalParameters()).isLessThan(source.totalParameters());
  }

  /** Float bytes of one routed expert (gate, up, down) from config.json, what an --expert-task-mb budget counts. */
  private static long expertBytes(String arch) throws IOException {
    JsonNode config = new ObjectMapper().readTree(ModelFixtures.path(arch).resolve("config.json").toFile());
    long hidden = config.get("hidden_size").asLong();
    long intermediate = config.has("moe_intermediate_size") ? config.get("moe_intermediate_size").asLong() : config.get("intermediate_size").asLong();
    return 4 * 3 * hidden * intermediate + 16 * (hidden + intermediate);
  }

  /** Runs the job; whether its MoE blocks ran expert-parallel must be as expected. */
  private ShrinkReport shrink(ShrinkOptions options, boolean expertParallel) throws IOException {
    ByteArrayOutputStream progress = new ByteArrayOutputStream();
    ShrinkReport report = new ShrinkJob(spark, options, new PrintStream(progress, true, StandardCharsets.UTF_8)).run();
    String log = progress.toString(StandardCharsets.UTF_8);
    assertThat(log.contains("(expert-parallel)")).as("progress:%n%s", log).isEqualTo(expertParallel);
    return report;
  }

  /** What report.json says of the statistics: every score the decision saw, in double, and what it kept. */
  private static JsonNode decided(Path out) throws IOException {
    com.fasterxml.jackson.databind.node.ObjectNode report = (com.fasterxml.jackson.databind.node.ObjectNode)
        new ObjectMapper().readTree(out.resolve("report.json").toFile());
    report.remove(java.util.List.of("configuration", "seconds"));
    return report;
  }

  /**
   * REAP and routing frequency with the MoE blocks run expert-parallel (two experts per task, so
   * no task holds a whole block): the same scores (depth, heads, experts: report.json's doubles)
   * and the same archive bytes as the job running each block whole, on 1, 2 and 3 partitions;
   * the kept experts are the in-process steps'.
   */
  @Test
  void expertParallelShrinkGivesTheWholeBlockScoresAndBytes() throws IOException {
    String arch = "qwen3_moe";
    String calib = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    ShrinkSettings settings = new ShrinkSettings(
        1, ShrinkSettings.LayerMetric.ANGULAR, 1, 0.5, ShrinkSettings.WidthMetric.ACTIVATION, 0.5, ExpertSaliency.Metric.REAP);
    ShrinkOptions whole = new ShrinkOptions(ModelFixtures.path(arch).toString(), dir.resolve("whole").toString(), calib,
        4, 32, 3, settings, "", SparsityTarget.parse("0.5"), 2, false, false);
    shrink(whole, false);
    for (int p = 1; p <= 3; p++) {
      Path out = dir.resolve("sharded-" + p);
      shrink(new ShrinkOptions(whole.model(), out.toString(), calib, 4, 32, 3, settings, "", SparsityTarget.parse("0.5"), p, false, false,
          2 * expertBytes(arch) + 1, SizeTarget.NONE), true);
      // REAP = sum / count per expert: equal doubles mean equal sums and counts (routing frequency).
      assertThat(decided(out)).as("%d partitions", p).isEqualTo(decided(Path.of(whole.out())));
      assertThat(Files.readAllBytes(out.resolve("model/model.safetensors"))).as("%d partitions", p)
          .isEqualTo(Files.readAllBytes(Path.of(whole.out()).resolve("model/model.safetensors")));
    }
    // The kept experts are the in-process steps' (whole blocks, one process).
    ModelArchive source = ModelArchive.open(IO, whole.model());
    ModelShape shape = ModelShape.of(source.config());
    int[][] samples = CalibrationSamples.sample(new HadoopFileIO(new Configuration()), calib, TokenizerLoader.load(source), 4, 32, 3);
    Map<Integer, int[][]> chunks = new HashMap<>();
    for (int c = 0; c < 4; c++) {
      chunks.put(c, Arrays.copyOfRange(samples, c, c + 1));
    }
    try (DecoderModel model = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
      ShrinkDecision decision = ShrinkDecision.choose(shape, settings, ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, chunks, settings.maxSpan())));
      JsonNode report = new ObjectMapper().readTree(dir.resolve("sharded-3").resolve("report.json").toFile());
      for (int b = 0; b < decision.plan().blocks().size(); b++) {
        assertThat(new ObjectMapper().convertValue(report.get("blocks").get(b).get("experts").get("kept_indices"), int[].class))
            .isEqualTo(decision.plan().blocks().get(b).experts());
      }
    }
  }

  /**
   * The job on DeepSeek-V3 (half the experts of every routing group, the MTP layer dropped) and
   * gpt-oss (half its fused experts and a pair of blocks): the same archive as the steps run in
   * one process.
   */
  @Test
  void shrinksTheGiantMoeFamiliesAsTheStepsInOneProcess() throws IOException {
    for (String arch : new String[] {"deepseek_v3", "gpt_oss", "deepseek_v3_fp8"}) {
      Path out = dir.resolve(arch);
      int drop = arch.equals("gpt_oss") ? 2 : 0;
      // The FP8 release asks for the repair, which skips its block-scaled linears: the bytes are the plain cut's.
      boolean repair = arch.equals("deepseek_v3_fp8");
      ShrinkOptions options = new ShrinkOptions(
          ModelFixtures.path(arch).toString(), out.toString(), SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(),
          2, 32, 3, new ShrinkSettings(drop, ShrinkSettings.LayerMetric.ANGULAR, 1, 1, ShrinkSettings.WidthMetric.ACTIVATION, 0.5,
              ExpertSaliency.Metric.REAP), "", SparsityTarget.parse("0.5"), 2, false, repair);
      new ShrinkJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
      ModelArchive source = ModelArchive.open(IO, options.model());
      ModelShape shape = ModelShape.of(source.config());
      int[][] samples = CalibrationSamples.sample(
          new HadoopFileIO(new Configuration()), options.calibration(), TokenizerLoader.load(source), 2, 32, 3);
      Map<Integer, int[][]> chunks = new HashMap<>();
      for (int c = 0; c < 2; c++) {
        chunks.put(c, Arrays.copyOfRange(samples, c, c + 1));
      }
      ShrinkDecision decision;
      try (DecoderModel model = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
        decision = ShrinkDecision.choose(shape, options.settings(), ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, chunks, drop)));
      }
      Path expected = dir.resolve(arch + "-expected");
      Files.createDirectories(expected);
      new ShrunkArchive(source, decision.plan()).writeTo(IO, expected.toString());
      Path model = out.resolve("model");
      assertThat(Files.readAllBytes(model.resolve("model.safetensors"))).as(arch)
          .isEqualTo(Files.readAllBytes(expected.resolve("model.safetensors")));
      // Expert-parallel (two experts per task; shared experts, dense first blocks, fused experts): the same bytes.
      Path sharded = dir.resolve(arch + "-sharded");
      if (!repair) {
        shrink(new ShrinkOptions(options.model(), sharded.toString(), options.calibration(), 2, 32, 3, options.settings(), "",
            SparsityTarget.parse("0.5"), 3, false, repair, 2 * expertBytes(arch) + 1, SizeTarget.NONE), true);
        assertThat(Files.readAllBytes(sharded.resolve("model/model.safetensors"))).as("%s expert-parallel", arch)
            .isEqualTo(Files.readAllBytes(expected.resolve("model.safetensors")));
      }
      assertThat(Files.readString(model.resolve("config.json"))).isEqualTo(Files.readString(expected.resolve("config.json")));
      ModelArchive shrunk = ModelArchive.open(IO, model.toString());
      assertThat(shrunk.totalParameters()).isLessThan(source.totalParameters());
      assertThat(shrunk.config().json().path("num_nextn_predict_layers").asInt()).isZero();
      if (repair) {
        assertThat(new ObjectMapper().readTree(out.resolve("report.json").toFile())
            .path("configuration").path("repair").asText()).startsWith("none (FP8 archive");
      }
    }
  }
}
