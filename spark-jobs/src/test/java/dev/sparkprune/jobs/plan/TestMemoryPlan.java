package dev.sparkprune.jobs.plan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.calibration.SparkExecutors;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The memory plan against a direct computation from the fixtures' safetensors headers (parsed
 * here with Jackson, not tensor-io) and config.json; the config-only plan (README's table)
 * against the header plan; the refusal's numbers and the executor shapes read from Spark conf.
 */
class TestMemoryPlan {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ExecutorShape EXECUTOR = ExecutorShape.given("8g", 2, 1);

  private static Path fixture(String name) {
    return SharedData.path("fixtures/models/" + name);
  }

  private static JsonNode header(Path model) throws IOException {
    try (InputStream in = Files.newInputStream(model.resolve("model.safetensors"))) {
      long length = ByteBuffer.wrap(in.readNBytes(8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
      return JSON.readTree(in.readNBytes((int) length));
    }
  }

  private static MemoryPlan plan(String name, MemoryPlan.Settings settings) throws IOException {
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), fixture(name).toString());
    ModelLayout layout = Architectures.layout(archive);
    return MemoryPlan.of(archive, layout, settings, EXECUTOR);
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"deepseek_v3_fp8", "gpt_oss_mxfp4", "glm4_moe"})
  void blockBytesAreTheHeadersSizes(String name) throws IOException {
    MemoryPlan.Settings settings = new MemoryPlan.Settings(16, 64, PruningMethod.SPARSEGPT, 64L << 20);
    MemoryPlan plan = plan(name, settings);
    JsonNode header = header(fixture(name));
    JsonNode config = JSON.readTree(fixture(name).resolve("config.json").toFile());
    int blocks = config.get("num_hidden_layers").asInt();
    long[] stored = new long[blocks];
    long[] parameters = new long[blocks];
    for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> entry = it.next();
      String tensor = entry.getKey();
      java.util.regex.Matcher matcher = java.util.regex.Pattern.compile("^model\\.layers\\.(\\d+)\\.").matcher(tensor);
      if (!matcher.find() || Integer.parseInt(matcher.group(1)) >= blocks) {
        continue;
      }
      int block = Integer.parseInt(matcher.group(1));
      JsonNode offsets = entry.getValue().get("data_offsets");
      stored[block] += offsets.get(1).asLong() - offsets.get(0).asLong();
      long count = 1;
      for (JsonNode dim : entry.getValue().get("shape")) {
        count *= dim.asLong();
      }
      if (tensor.endsWith("_scale_inv") || tensor.endsWith("_scales")) {
        continue; // scales are storage, not parameters
      }
      // MXFP4 blocks: [experts, out, in/32, 16] bytes hold two values each.
      parameters[block] += tensor.endsWith("_blocks") ? 2 * count : count;
    }
    assertThat(plan.blocks()).hasSize(blocks);
    long hidden = config.get("hidden_size").asLong();
    long tokens = (long) Math.max(1, 16 / 16) * 64;
    for (MemoryPlan.BlockPlan block : plan.blocks()) {
      int b = block.block();
      assertThat(block.storedBytes()).as("block %d stored", b).isEqualTo(stored[b]);
      assertThat(block.floatBytes()).as("block %d float", b).isEqualTo(4 * parameters[b]);
      assertThat(block.calibrationTaskBytes()).as("block %d task", b)
          .isEqualTo(block.floatBytes() + 4 * tokens * (2 * hidden + widest(plan, b, name)) + 2 * block.statisticsBytes());
      assertThat(block.calibrationExecutorBytes())
          .isEqualTo(2 * block.floatBytes() + 2 * (4 * tokens * (2 * hidden + widest(plan, b, name)) + 2 * block.statisticsBytes()));
      assertThat(block.shuffleBytes()).isEqualTo(block.statisticsBytes() * 2);
    }
  }

  /** The widest linear output of the block, from the layout (what the activations hold besides the hidden states). */
  private static long widest(MemoryPlan plan, int block, String name) throws IOException {
    ModelLayout layout = Architectures.layout(ModelArchive.open(new LocalFileIO(), fixture(name).toString()));
    return layout.blocks().get(block).linears().stream().mapToLong(l -> l.outFeatures()).max().orElse(0);
  }

  @Test
  void sparseGptStatisticsAreOneDoubleHessianPerInputGroup() throws IOException {
    // deepseek_v3 block 1: inputs q_a/kv_a (hidden), q_b (q_lora_rank), kv_b (kv_lora_rank), o (heads x v_head_dim),
    // 16 routed experts' and the shared experts' gate/up (hidden) and down (moe or shared intermediate).
    JsonNode config = JSON.readTree(fixture("deepseek_v3_fp8").resolve("config.json").toFile());
    long hidden = config.get("hidden_size").asLong();
    long oIn = config.get("num_attention_heads").asLong() * config.get("v_head_dim").asLong();
    long moe = config.get("moe_intermediate_size").asLong();
    long experts = config.get("n_routed_experts").asLong();
    long shared = moe * config.get("n_shared_experts").asLong();
    long expected = 8 * (hidden * hidden + square(config.get("q_lora_rank").asLong()) + square(config.get("kv_lora_rank").asLong())
        + oIn * oIn + experts * (hidden * hidden + moe * moe) + hidden * hidden + shared * shared);
    MemoryPlan sparsegpt = plan("deepseek_v3_fp8", new MemoryPlan.Settings(16, 64, PruningMethod.SPARSEGPT, 64L << 20));
    assertThat(sparsegpt.blocks().get(1).statisticsBytes()).isEqualTo(expected);
    MemoryPlan magnitude = plan("deepseek_v3_fp8", new MemoryPlan.Settings(16, 64, PruningMethod.MAGNITUDE, 64L << 20));
    assertThat(magnitude.blocks().get(1).calibrationTaskBytes()).isZero();
    assertThat(magnitude.blocks().get(1).scoringTaskBytes()).isPositive();
  }

  private static long square(long value) {
    return value * value;
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"deepseek_v3_fp8, FP8", "gpt_oss_mxfp4, MXFP4", "gpt_oss, BF16"})
  void theConfigOnlyPlanIsTheHeaderPlan(String name, MemoryPlan.Release release) throws IOException {
    MemoryPlan.Settings settings = new MemoryPlan.Settings(128, 2048, PruningMethod.WANDA, 64L << 20);
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), fixture(name).toString());
    MemoryPlan fromHeaders = MemoryPlan.of(archive, Architectures.layout(archive), settings, EXECUTOR);
    MemoryPlan fromConfig = MemoryPlan.of(archive.config(), release, settings, EXECUTOR);
    assertThat(fromConfig.blocks()).isEqualTo(fromHeaders.blocks());
  }

  @Test
  void scoringTasksGroupLinearsByFloatBytes() throws IOException {
    // 1 MiB tasks: deepseek_v3 block 1's linears in plan order, a task closed once its weights reach 1 MiB.
    MemoryPlan plan = plan("deepseek_v3_fp8", new MemoryPlan.Settings(16, 64, PruningMethod.WANDA, 1L << 20));
    ModelLayout layout = Architectures.layout(ModelArchive.open(new LocalFileIO(), fixture("deepseek_v3_fp8").toString()));
    long total = layout.blocks().get(1).linears().stream().mapToLong(l -> 4 * l.parameters()).sum();
    // Every linear here is below 1 MiB, so each task holds 1 to 2 MiB of weights: between total/2MiB and total/1MiB tasks.
    assertThat(plan.blocks().get(1).scoringTasks()).isBetween((int) (total / (2L << 20)), (int) ((total + (1 << 20) - 1) / (1 << 20)));
  }

  @Test
  void aPlanThatDoesNotFitIsOneLineNamingTheBlockBytesAndSetting() throws IOException {
    MemoryPlan.Settings settings = new MemoryPlan.Settings(128, 2048, PruningMethod.SPARSEGPT, 64L << 20);
    ExecutorShape small = ExecutorShape.given("320m", 1, 1);
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), fixture("deepseek_v3_fp8").toString());
    MemoryPlan plan = MemoryPlan.of(archive, Architectures.layout(archive), settings, small);
    MemoryPlan.BlockPlan first = plan.blocks().get(0);
    assertThat(first.calibrationExecutorBytes()).isGreaterThan(20L << 20);
    assertThatThrownBy(() -> plan.checkFits("Cannot prune x"))
        .isInstanceOf(ValidationException.class)
        .hasMessageStartingWith("Cannot prune x: block 0 needs about " + MemoryPlan.gib(first.calibrationExecutorBytes())
            + " per executor in calibration")
        .hasMessageContaining("more than the " + MemoryPlan.gib(20L << 20) + " an executor leaves (--executor-memory 320m); raise --executor-memory")
        .hasMessageNotContaining("\n");
    MemoryPlan.of(archive, Architectures.layout(archive), settings, EXECUTOR).checkFits("Cannot prune x");
  }

  @Test
  void executorShapesFollowTheMaster() {
    SparkConf conf = new SparkConf(false).set("spark.executor.memory", "6g").set("spark.executor.cores", "4")
        .set("spark.executor.instances", "10");
    ExecutorShape yarn = SparkExecutors.of("yarn", conf);
    assertThat(List.of(yarn.memoryBytes(), (long) yarn.cores(), (long) yarn.executors())).containsExactly(6L << 30, 4L, 10L);
    assertThat(yarn.setting()).isEqualTo("spark.executor.memory");
    assertThat(yarn.source()).isEqualTo("spark.executor.memory 6g, spark.executor.cores 4");
    // Instances unset: unknown (0), as with dynamic allocation.
    ExecutorShape k8s = SparkExecutors.of("k8s://https://host", new SparkConf(false));
    assertThat(List.of(k8s.memoryBytes(), (long) k8s.cores(), (long) k8s.executors())).containsExactly(1L << 30, 1L, 0L);
    ExecutorShape cluster = SparkExecutors.of("local-cluster[2, 3, 1024]", conf);
    assertThat(cluster.memoryBytes()).isEqualTo(1L << 30);
    assertThat(cluster.cores()).isEqualTo(3);
    assertThat(cluster.executors()).isEqualTo(2);
    ExecutorShape local = SparkExecutors.of("local[3]", conf);
    assertThat(local.memoryBytes()).isEqualTo(Runtime.getRuntime().maxMemory());
    assertThat(local.cores()).isEqualTo(3);
    assertThat(local.usableBytes()).isEqualTo(Math.max(0, Runtime.getRuntime().maxMemory() - (300L << 20)));
    assertThatThrownBy(() -> SparkExecutors.of("yarn", new SparkConf(false).set("spark.executor.memory", "lots")))
        .hasMessage("Invalid spark.executor.memory lots: use a size such as 4g or 512m");
  }
}
