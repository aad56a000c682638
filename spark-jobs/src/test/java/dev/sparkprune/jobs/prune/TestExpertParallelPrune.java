package dev.sparkprune.jobs.prune;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.jobs.prune.output.PruneReport;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The prune job with MoE blocks run expert-parallel (their experts in groups of a few, each
 * group a task of its own fed by a shuffle of the routed tokens) gives the same bytes as the
 * job that runs each block whole: the pruned archive, every mask, and every expert's
 * calibration token count, on 1, 2 and 3 calibration partitions and two --expert-task-mb
 * budgets, sequential (the states advanced through the pruned sharded blocks) and one-shot.
 */
class TestExpertParallelPrune extends SparkTestBase {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;

  /**
   * An --expert-task-mb budget over every fixture block's experts, so each block is one group (the
   * whole-block path), yet within a task's heap share, which the run plan requires.
   */
  private static final long WHOLE_BLOCK = 1L << 30;

  /** Six calibration samples of the golden tokens, reversed, rotated and interleaved: 6 chunks. */
  private static Path calibration(String arch) throws IOException {
    int[] golden = ModelFixtures.goldenTokens(arch);
    StringBuilder jsonl = new StringBuilder();
    for (int variant = 0; variant < 6; variant++) {
      int shift = 11 * variant;
      boolean reverse = variant % 2 == 1;
      int[] row = IntStream.range(0, golden.length).map(t -> golden[reverse ? golden.length - 1 - (t + shift) % golden.length : (t + shift) % golden.length]).toArray();
      jsonl.append("{\"input_ids\": ").append(java.util.Arrays.toString(row)).append("}\n");
    }
    Path file = dir.resolve(arch + ".jsonl");
    Files.writeString(file, jsonl);
    return file;
  }

  /** Float bytes of one routed expert with its Wanda statistics, from config.json. */
  private static long expertBytes(String arch) throws IOException {
    JsonNode config = JSON.readTree(ModelFixtures.path(arch).resolve("config.json").toFile());
    long hidden = config.get("hidden_size").asLong();
    long intermediate = config.has("moe_intermediate_size") ? config.get("moe_intermediate_size").asLong() : config.get("intermediate_size").asLong();
    return 4 * 3 * hidden * intermediate + 16 * (hidden + intermediate);
  }

  private static Path prune(String arch, String name, PruningMethod method, PruneOptions.Mode mode, InputHook.ExpertInputs inputs,
      int partitions, long budget) throws IOException {
    Path out = dir.resolve(arch + "-" + name);
    ByteArrayOutputStream progress = new ByteArrayOutputStream();
    PruneReport report = new PruneJob(spark, PruneOptions.builder().model(ModelFixtures.path(arch).toString()).out(out.toString()).method(method)
        .target(SparsityTarget.parse("2:4")).calibration(calibration(arch).toString()).nsamples(6).seqlen(64).mode(mode)
        .moeCalibration(inputs).minExpertTokens(4).partitions(partitions).expertTaskBytes(budget).build(),
        new PrintStream(progress, true, StandardCharsets.UTF_8)).run();
    assertThat(report.layerCount()).isPositive();
    String log = progress.toString(StandardCharsets.UTF_8);
    boolean sharded = budget < WHOLE_BLOCK;
    assertThat(log.contains("(expert-parallel)")).as("%s %s progress:%n%s", arch, name, log).isEqualTo(sharded);
    return out;
  }

  /** The pruned archive's files, byte for byte. */
  private static Map<String, byte[]> archive(Path out) throws IOException {
    Map<String, byte[]> files = new TreeMap<>();
    try (Stream<Path> paths = Files.list(out.resolve("model"))) {
      for (Path path : paths.toList()) {
        files.put(path.getFileName().toString(), Files.readAllBytes(path));
      }
    }
    return files;
  }

  /**
   * Each expert's calibration tokens and fallback, from report.json (gpt-oss's too: its experts'
   * gate, up and down are prunable slices of the fused tensors).
   */
  private static Map<String, String> expertTokens(Path out) throws IOException {
    Map<String, String> tokens = new TreeMap<>();
    for (JsonNode expert : JSON.readTree(out.resolve("report.json").toFile()).path("experts")) {
      tokens.put(expert.get("block").asText() + "/" + expert.get("expert").asText(),
          expert.get("calibration_tokens").asText() + "/" + expert.get("magnitude_fallback").asText());
    }
    return tokens;
  }

  private static void assertSameOutputs(Path expected, Path actual) throws IOException {
    Map<String, byte[]> expectedFiles = archive(expected);
    Map<String, byte[]> actualFiles = archive(actual);
    assertThat(actualFiles.keySet()).isEqualTo(expectedFiles.keySet());
    expectedFiles.forEach((name, bytes) -> assertThat(actualFiles.get(name)).as("%s of %s", name, actual).isEqualTo(bytes));
    Map<String, Mask> expectedMasks = TestPruneJobMasks.read(spark, expected);
    assertThat(TestPruneJobMasks.read(spark, actual)).as("masks of %s", actual).isEqualTo(expectedMasks);
    assertThat(expertTokens(actual)).isEqualTo(expertTokens(expected));
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "glm4_moe", "gpt_oss"})
  void wandaShardedGivesTheUnshardedBytes(String arch) throws IOException {
    long expert = expertBytes(arch);
    Path whole = prune(arch, "wanda-whole", PruningMethod.WANDA, PruneOptions.Mode.SEQUENTIAL, InputHook.ExpertInputs.ROUTED, 2, WHOLE_BLOCK);
    // Three experts per group on 3 partitions (of 6 chunks).
    Path sharded = prune(arch, "wanda-3", PruningMethod.WANDA, PruneOptions.Mode.SEQUENTIAL, InputHook.ExpertInputs.ROUTED, 3, 3 * expert + 1);
    assertSameOutputs(whole, sharded);
    assertThat(expertTokens(sharded)).as("experts in report.json").isNotEmpty();
  }

  @Test
  void sparseGptShardedOnOneTwoAndThreePartitionsAndTwoBudgets() throws IOException {
    String arch = "qwen2_moe";
    long expert = expertBytes(arch) + 8L * (64 * 64 + 32 * 32);
    Path whole = prune(arch, "sparsegpt-whole", PruningMethod.SPARSEGPT, PruneOptions.Mode.SEQUENTIAL, InputHook.ExpertInputs.ROUTED, 2,
        WHOLE_BLOCK);
    for (int partitions = 1; partitions <= 3; partitions++) {
      long budget = partitions == 2 ? expert : 5 * expert;
      Path sharded = prune(arch, "sparsegpt-" + partitions, PruningMethod.SPARSEGPT, PruneOptions.Mode.SEQUENTIAL,
          InputHook.ExpertInputs.ROUTED, partitions, budget);
      assertSameOutputs(whole, sharded);
    }
  }

  @Test
  void everyTokenToEveryGroupGivesTheUnshardedBytesOfMoeCalibrationAll() throws IOException {
    String arch = "deepseek_v3";
    long expert = expertBytes(arch);
    Path whole = prune(arch, "all-whole", PruningMethod.WANDA, PruneOptions.Mode.ONE_SHOT, InputHook.ExpertInputs.ALL, 2, WHOLE_BLOCK);
    Path sharded = prune(arch, "all-sharded", PruningMethod.WANDA, PruneOptions.Mode.ONE_SHOT, InputHook.ExpertInputs.ALL, 3, 5 * expert);
    assertSameOutputs(whole, sharded);
    assertThat(expertTokens(sharded).values()).allSatisfy(tokens -> assertThat(tokens).isEqualTo("384/false"));
  }
}
