package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.prune.output.PruneReport;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.jobs.cli.Main;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.methods.Magnitude;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The prune job on the architecture fixtures of ../shared/fixtures/models: masks meet their
 * targets, the pruned archives evaluate, and each routed expert's statistics count exactly the
 * tokens its router sends it, checked against routing computed here from the fixture's weights.
 */
class TestPruneMoe extends SparkTestBase {
  private static final LocalFileIO IO = new LocalFileIO();
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;

  static Path fixture(String arch) {
    return ModelFixtures.path(arch);
  }

  static int[] goldenTokens(String arch) throws IOException {
    return ModelFixtures.goldenTokens(arch);
  }

  /** Pre-tokenized calibration rows, used by the job exactly as given. */
  static Path calibration(String name, int[]... rows) throws IOException {
    StringBuilder jsonl = new StringBuilder();
    for (int[] row : rows) {
      jsonl.append("{\"input_ids\": ").append(java.util.Arrays.toString(row)).append("}\n");
    }
    Path file = dir.resolve(name + ".jsonl");
    Files.writeString(file, jsonl);
    return file;
  }

  static PruneReport run(PruneOptions options) throws IOException {
    return new PruneJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
  }

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    for (String arch : List.of("llama", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe")) {
      for (PruningMethod method : List.of(PruningMethod.WANDA, PruningMethod.SPARSEGPT)) {
        for (String target : List.of("0.5", "2:4")) {
          cases.add(Arguments.of(arch, method, target));
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("cases")
  void masksMeetTheirTargetsAndThePrunedArchiveEvaluates(String arch, PruningMethod method, String target) throws IOException {
    int[] golden = goldenTokens(arch);
    int[] reversed = new int[64];
    int[] rotated = new int[64];
    for (int t = 0; t < 64; t++) {
      reversed[t] = golden[63 - t];
      rotated[t] = golden[(t + 17) % 64];
    }
    Path calib = calibration(arch + "-" + method + "-" + target.replace(":", "of"), golden, reversed, rotated, golden);
    Path out = dir.resolve("out-" + arch + "-" + method + "-" + target.replace(":", "of"));
    SparsityTarget sparsity = SparsityTarget.parse(target);
    PruneReport report = run(PruneOptions.builder().model(fixture(arch).toString()).out(out.toString()).method(method).target(sparsity)
        .calibration(calib.toString()).nsamples(4).seqlen(64).build());

    Map<String, Mask> masks = TestPruneJobMasks.read(spark, out);
    ModelArchive pruned = ModelArchive.open(IO, out.resolve("model").toString());
    try (DecoderModel model = Models.open(pruned, NetlibLinearAlgebra.defaultInstance())) {
      List<Linear> linears = model.layout().linears();
      assertThat(masks.keySet()).containsExactlyInAnyOrderElementsOf(linears.stream().map(Linear::tensorName).toList());
      assertThat(report.layerCount()).isEqualTo(linears.size());
      for (Linear linear : linears) {
        Mask mask = masks.get(linear.tensorName());
        if (sparsity.isStructured()) {
          for (int r = 0; r < mask.rows(); r++) {
            for (int c = 0; c < mask.cols(); c += 4) {
              int kept = 0;
              for (int j = 0; j < 4; j++) {
                kept += mask.isKept(r, c + j) ? 1 : 0;
              }
              assertThat(kept).as("%s row %d columns %d-%d", linear.tensorName(), r, c, c + 3).isEqualTo(2);
            }
          }
        } else {
          assertThat(mask.sparsity()).as("%s sparsity", linear.tensorName()).isBetween(0.49, 0.52);
        }
        float[] weights;
        try (SafetensorsReader reader = pruned.openShard(pruned.tensor(linear.tensorName()).shard())) {
          weights = reader.readFloats(linear.tensorName());
        }
        for (int i = 0; i < weights.length; i++) {
          if (!mask.isKept(i / mask.cols(), i % mask.cols())) {
            assertThat(weights[i]).as("%s pruned weight %d", linear.tensorName(), i).isZero();
          }
        }
      }
    }

    ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    int code = Main.run(
        new String[] {"eval", "--model", out.resolve("model").toString(), "--text",
            SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), "--seqlen", "64", "--max-windows", "4"},
        new PrintStream(stdout, true, StandardCharsets.UTF_8), new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    assertThat(code).isZero();
    String perplexity = stdout.toString(StandardCharsets.UTF_8).lines().filter(line -> line.startsWith("perplexity")).findFirst().orElseThrow();
    assertThat(Double.parseDouble(perplexity.split("\\s+")[1])).isFinite().isGreaterThan(1.0);
  }

  /**
   * One-shot statistics of the golden sequence: every routed expert's calibration tokens equal
   * the number of golden tokens that routing, computed here in double from the router weights
   * and the MoE input, sends it; experts under --min-expert-tokens fall back to magnitude.
   */
  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe"})
  void expertTokenCountsEqualTheRoutingAndSmallExpertsFallBackToMagnitude(String arch) throws IOException {
    int[] golden = goldenTokens(arch);
    int[][] expected = routedCounts(arch, golden);
    Path calib = calibration(arch + "-golden", golden);
    Path out = dir.resolve("counts-" + arch);
    PruneReport report = run(PruneOptions.builder().model(fixture(arch).toString()).out(out.toString()).method(PruningMethod.WANDA)
        .target(SparsityTarget.unstructured(0.5)).calibration(calib.toString()).nsamples(1).seqlen(64).mode(PruneOptions.Mode.ONE_SHOT)
        .build());
    JsonNode json = JSON.readTree(out.resolve("report.json").toFile());
    assertThat(json.get("configuration").get("min_expert_tokens").asInt()).isEqualTo(16);
    int fallbacks = 0;
    int shared = 0;
    for (JsonNode expert : json.get("experts")) {
      if (expert.get("expert").asText().equals("shared")) {
        assertThat(expert.get("calibration_tokens").asLong()).isEqualTo(64);
        shared++;
        continue;
      }
      int count = expected[expert.get("block").asInt()][expert.get("expert").asInt()];
      assertThat(expert.get("calibration_tokens").asLong()).as("%s expert %s", arch, expert).isEqualTo(count);
      assertThat(expert.get("magnitude_fallback").asBoolean()).as("%s expert %s", arch, expert).isEqualTo(count < 16);
      fallbacks += count < 16 ? 1 : 0;
    }
    assertThat(json.get("experts")).hasSize(3 * 8 + shared);
    assertThat(fallbacks).as("the golden sequence leaves some expert under 16 tokens").isPositive();
    Map<String, Mask> masks = TestPruneJobMasks.read(spark, out);
    ModelArchive archive = ModelArchive.open(IO, fixture(arch).toString());
    int checked = 0;
    for (JsonNode layer : json.get("layers")) {
      if (!layer.has("fallback")) {
        continue;
      }
      assertThat(layer.get("fallback").asText())
          .isEqualTo("magnitude: " + layer.get("calibration_tokens").asLong() + " calibration tokens, fewer than --min-expert-tokens 16");
      // The fallback expert's mask is magnitude's on the dense weights.
      String tensor = layer.get("tensor").asText();
      float[] dense;
      try (SafetensorsReader reader = archive.openShard(archive.tensor(tensor).shard())) {
        dense = reader.readFloats(tensor);
      }
      Mask magnitude = Magnitude.prune(tensor, Weights.of(layer.get("rows").asInt(), layer.get("cols").asInt(), dense),
          SparsityTarget.unstructured(0.5), Magnitude.Scope.MATRIX, CpuBackend.defaultInstance(), 1).mask();
      assertThat(masks.get(tensor)).as(tensor).isEqualTo(magnitude);
      checked++;
    }
    assertThat(checked).isEqualTo(3 * fallbacks);
    assertThat(report.layerCount()).isEqualTo(json.get("layers").size());

    // Every token for every expert: no expert falls short.
    Path all = dir.resolve("all-" + arch);
    run(PruneOptions.builder().model(fixture(arch).toString()).out(all.toString()).method(PruningMethod.WANDA)
        .target(SparsityTarget.unstructured(0.5)).calibration(calib.toString()).nsamples(1).seqlen(64).mode(PruneOptions.Mode.ONE_SHOT)
        .moeCalibration(InputHook.ExpertInputs.ALL).build());
    JsonNode allJson = JSON.readTree(all.resolve("report.json").toFile());
    assertThat(allJson.get("configuration").get("moe_calibration").asText()).isEqualTo("all");
    for (JsonNode expert : allJson.get("experts")) {
      assertThat(expert.get("calibration_tokens").asLong()).isEqualTo(64);
      assertThat(expert.get("magnitude_fallback").asBoolean()).isFalse();
    }
  }

  /** [block][expert] token counts of the dense model's routing, computed from the router weights directly. */
  private static int[][] routedCounts(String arch, int[] tokens) throws IOException {
    ModelArchive archive = ModelArchive.open(IO, fixture(arch).toString());
    MixtureOfExperts moe = MixtureOfExperts.of(archive.config()).orElseThrow();
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      int blocks = model.layout().blocks().size();
      int[][] counts = new int[blocks][moe.experts()];
      HiddenStates hidden = model.embed(new int[][] {tokens});
      for (int b = 0; b < blocks; b++) {
        BlockWeights weights = model.loadBlock(b);
        float[][] moeInput = new float[1][];
        int width = hidden.width();
        HiddenStates next = model.runBlock(weights, hidden, new InputHook() {
          @Override
          public void accept(List<Linear> linears, float[] input, int count, int sequences) {
            if (linears.get(0).tensorName().contains("experts.0.") && linears.get(0).inFeatures() == width) {
              moeInput[0] = input.clone();
            }
          }

          @Override
          public ExpertInputs expertInputs() {
            return ExpertInputs.ALL;
          }
        });
        float[] router = weights.tensor("model.layers." + b + "." + moe.router() + ".weight");
        int[][] rows = ModelFixtures.routedRows(moeInput[0], router, tokens.length, moe);
        for (int e = 0; e < moe.experts(); e++) {
          counts[b][e] = rows[e].length;
        }
        hidden = next;
      }
      return counts;
    }
  }

  @org.junit.jupiter.api.Test
  void aBatchPrunesMixtureOfExpertsModelsFromText() throws IOException {
    String calib = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    Path manifest = dir.resolve("moe-manifest.jsonl");
    Files.writeString(manifest, String.join("\n",
        "{\"model\": \"" + fixture("qwen3_moe") + "\", \"name\": \"qwen3_moe\", \"method\": \"wanda\", \"pattern\": \"2:4\", \"calib\": \""
            + calib + "\", \"nsamples\": 2, \"seqlen\": 64}",
        "{\"model\": \"" + fixture("mixtral") + "\", \"name\": \"mixtral\", \"method\": \"sparsegpt\", \"sparsity\": 0.5, \"calib\": \""
            + calib + "\", \"nsamples\": 2, \"seqlen\": 64}",
        ""));
    Path outRoot = dir.resolve("moe-batch");
    List<org.apache.spark.sql.Row> rows =
        new BatchJob(spark, manifest.toString(), outRoot.toString(), new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8))
            .run();
    assertThat(rows.stream().map(row -> row.getString(0) + "=" + row.getString(2)).toList())
        .containsExactly("qwen3_moe=SUCCEEDED", "mixtral=SUCCEEDED");
    for (String name : List.of("qwen3_moe", "mixtral")) {
      JsonNode report = JSON.readTree(outRoot.resolve(name).resolve("report.json").toFile());
      assertThat(report.get("experts")).hasSize(3 * 8);
      long routed = 0;
      for (JsonNode expert : report.get("experts")) {
        routed += expert.get("calibration_tokens").asLong();
      }
      // Two samples of 64 tokens, each routed to 2 experts, in each of 3 blocks.
      assertThat(routed).isEqualTo(3L * 2 * 64 * 2);
    }
  }
}
