package dev.sparkprune.jobs.prune;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.FolderSnapshot;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The memory case of issue 24: a qwen3_moe block of 256 experts of 3 x 512 x 512 (805 MB of
 * experts as float; before expert-parallel calibration a 640 MB heap died of OutOfMemoryError)
 * prunes in a JVM of 640 MB, local[2], its experts spread over expert tasks, and writes the
 * bytes that a 3 GB JVM running the block whole in one task writes. An --expert-task-mb over a
 * task's heap is refused in one line before Spark starts. An IT: three JVMs of their own, about
 * three minutes on two cores.
 */
class ExpertShardedMemoryIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;
  private static Path model;

  /** One block of the issue's shape, BF16 on disk (405 MB), seed 1. */
  @BeforeAll
  static void generate() throws IOException {
    model = dir.resolve("model");
    LocalFileIO io = new LocalFileIO();
    SyntheticArchive.builder(SyntheticArchive.qwen3MoeConfig(512, 1, 8, 4, 64, 256, 8, 512, 512)).dtype(DType.BF16).seed(1).build()
        .write(io, model.toString());
    SyntheticArchive.writeByteLevelTokenizer(io, model.toString());
  }

  private record Run(int code, String output) {}

  /** {@code sparkprune prune} (Wanda 50%, 8 samples of 64 tokens) in a JVM of its own with {@code heap}. */
  private static Run prune(Path out, String heap, String... extra) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String argument : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (argument.startsWith("--add-") || argument.startsWith("-XX:+IgnoreUnrecognized") || argument.startsWith("--enable-native")) {
        command.add(argument);
      }
    }
    command.addAll(List.of("-Xmx" + heap, "-Dspark.ui.enabled=false", "-Dspark.driver.host=127.0.0.1", "-Dspark.driver.bindAddress=127.0.0.1",
        "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")), "dev.sparkprune.jobs.cli.Main",
        "prune", "--model", model.toString(), "--out", out.toString(), "--method", "wanda", "--sparsity", "0.5",
        "--calib", SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), "--nsamples", "8", "--seqlen", "64",
        "--master", "local[2]"));
    command.addAll(List.of(extra));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().put("OPENBLAS_NUM_THREADS", "1");
    Process process = builder.start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(300, TimeUnit.SECONDS)).isTrue();
    return new Run(process.exitValue(), output);
  }

  /** Each expert's calibration tokens, from report.json. */
  private static Map<String, String> expertTokens(Path out) throws IOException {
    Map<String, String> tokens = new TreeMap<>();
    for (JsonNode expert : JSON.readTree(out.resolve("report.json").toFile()).get("experts")) {
      tokens.put(expert.get("block").asText() + "/" + expert.get("expert").asText(), expert.get("calibration_tokens").asText());
    }
    return tokens;
  }

  @Test
  void theIssuesBlockPrunesUnder640MbWithTheBytesOfTheWholeBlockUnder3Gb() throws IOException, InterruptedException {
    Path sharded = dir.resolve("sharded");
    Run small = prune(sharded, "640m");
    assertThat(small.code()).as(small.output()).isZero();
    // About 310 MB per task, a quarter of it for experts: about ten groups of 3 MB experts.
    assertThat(small.output()).as(small.output()).containsPattern("block 1/1: 256 routed experts in \\d+ expert groups \\(expert-parallel\\)");

    Path whole = dir.resolve("whole");
    Run large = prune(whole, "3g", "--expert-task-mb", "1500");
    assertThat(large.code()).as(large.output()).isZero();
    assertThat(large.output()).doesNotContain("expert-parallel");

    Map<String, byte[]> expected = FolderSnapshot.of(whole.resolve("model"));
    Map<String, byte[]> actual = FolderSnapshot.of(sharded.resolve("model"));
    assertThat(actual.keySet()).isEqualTo(expected.keySet());
    expected.forEach((name, bytes) -> assertThat(actual.get(name)).as(name).isEqualTo(bytes));
    assertThat(expertTokens(sharded)).hasSize(256).isEqualTo(expertTokens(whole));
  }

  @Test
  void anExpertTaskBudgetOverATasksHeapIsOneLineBeforeSpark() throws IOException, InterruptedException {
    Path out = dir.resolve("refused");
    Run refused = prune(out, "640m", "--expert-task-mb", "1000");
    assertThat(refused.code()).as(refused.output()).isEqualTo(2);
    // The JVM's own notice of the incubator Vector API module (--add-modules) aside.
    List<String> lines = refused.output().strip().lines().filter(line -> !line.startsWith("WARNING: Using incubator modules")).toList();
    assertThat(lines).as(refused.output()).hasSize(1);
    assertThat(lines.get(0)).startsWith("sparkprune: error: Invalid --expert-task-mb 1000: a task has ").contains("; set it to at most ");
    assertThat(out).doesNotExist();
  }
}
