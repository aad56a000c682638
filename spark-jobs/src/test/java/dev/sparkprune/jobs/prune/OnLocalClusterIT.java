package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.spark.FaultInjection;
import dev.sparkprune.jobs.spark.FaultProbe;
import dev.sparkprune.jobs.prune.output.PruneReport;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.LocalClusterSessions;
import dev.sparkprune.jobs.cluster.FakeGpuDiscoveryPlugin;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The prune job on a real standalone cluster in this JVM: two workers with one core and one
 * (fake-discovered) GPU each, executors in JVMs of their own, so broadcasts, shuffles and cached
 * blocks cross process boundaries and an executor can be lost.
 */
class OnLocalClusterIT {
  private static SparkSession spark;

  @TempDir static Path SHARED_DIR;

  @BeforeAll
  static void start() {
    spark = LocalClusterSessions.start("local-cluster[2,1,1024]", Map.of(
        "spark.resources.discoveryPlugin", FakeGpuDiscoveryPlugin.class.getName(),
        "spark.worker.resource.gpu.amount", "1",
        "spark.executor.resource.gpu.amount", "1"));
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  /** A clean CPU run, shared by the tests that compare against one. */
  private static Path cpuRun;

  private Path cpuRun() throws IOException {
    if (cpuRun == null) {
      cpuRun = run("cpu", 0);
    }
    return cpuRun;
  }

  private Path run(String name, double gpusPerTask) throws IOException {
    Path out = SHARED_DIR.resolve(name);
    PruneOptions options = PruneOptions.builder().model(SharedData.stories260K().toString()).out(out.toString())
        .method(PruningMethod.SPARSEGPT).target(SparsityTarget.unstructured(0.5))
        .calibration(SharedData.path("data/tinystories/tinystories_val_sample.txt").toString()).nsamples(4).seqlen(64).seed(3)
        .gpusPerTask(gpusPerTask).build();
    PruneReport report = new PruneJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
    ByteArrayOutputStream summary = new ByteArrayOutputStream();
    report.printSummary(new PrintStream(summary, true, StandardCharsets.UTF_8));
    Files.writeString(out.resolveSibling(name + ".summary"), summary.toString(StandardCharsets.UTF_8));
    return out;
  }

  @Test
  void eachScoringTaskSeesOneGpuBothGpusAreUsedAndMasksEqualACpuRun() throws IOException {
    Path cpu = cpuRun();
    Path gpu = run("gpu", 1);

    JsonNode layers = new ObjectMapper().readTree(gpu.resolve("report.json").toFile()).get("layers");
    assertThat(layers.size()).isEqualTo(35);
    Set<String> gpus = new TreeSet<>();
    Set<String> executors = new TreeSet<>();
    for (JsonNode layer : layers) {
      String assigned = layer.path("gpu").asText();
      assertThat(assigned).as("GPU addresses of the task scoring %s", layer.get("tensor").asText()).matches("[01]");
      gpus.add(assigned);
      executors.add(layer.get("executor").asText());
      // No GPU here (and no CUDA backend unless built with -Pcuda): the task says why and scores on the CPU.
      assertThat(layer.get("backend").asText()).startsWith("cpu: ");
      assertThat(layer.get("gpu_fallback").asText()).matches("no GPU backend on the classpath.*|the GPU backend did not start \\(cuda: .*");
    }
    assertThat(gpus).containsExactly("0", "1");
    // The printed summary tells the operator the GPUs went unused, and why.
    assertThat(Files.readString(gpu.resolveSibling("gpu.summary")))
        .containsPattern("scored on cpu: .*: 35 linears")
        .containsPattern("warning: 35 linears were given a GPU but scored on the CPU: (no GPU backend|the GPU backend did not start)");
    assertThat(Files.readString(cpu.resolveSibling("cpu.summary"))).doesNotContain("warning:");
    assertThat(executors).hasSize(2).doesNotContain("driver");

    for (JsonNode layer : new ObjectMapper().readTree(cpu.resolve("report.json").toFile()).get("layers")) {
      assertThat(layer.has("gpu")).isFalse();
    }
    assertThat(TestPruneJobMasks.read(spark, gpu)).isEqualTo(TestPruneJobMasks.read(spark, cpu));
    assertThat(Files.readAllBytes(gpu.resolve("model/model.safetensors"))).isEqualTo(Files.readAllBytes(cpu.resolve("model/model.safetensors")));
  }

  /**
   * The first calibration task to push hidden states through a block halts its executor: the
   * cached hidden states and shuffle files on it are gone. Spark replaces the executor, recomputes
   * the lost partitions from lineage, and the output is byte for byte the clean run's.
   */
  @Test
  void anExecutorLostMidStageIsSurvivedWithIdenticalOutput() throws IOException {
    Path cpu = cpuRun();
    Path marker = SHARED_DIR.resolve("executor-exited");
    spark.conf().set(FaultProbe.CLASS_KEY, FaultInjection.class.getName());
    spark.conf().set(FaultInjection.EXIT_EXECUTOR_ONCE, "advance@" + marker);
    Path survived;
    try {
      survived = run("survived", 0);
    } finally {
      spark.conf().unset(FaultInjection.EXIT_EXECUTOR_ONCE);
      spark.conf().unset(FaultProbe.CLASS_KEY);
    }
    assertThat(marker).as("an executor was halted").exists();
    Set<String> executors = new TreeSet<>();
    for (JsonNode layer : new ObjectMapper().readTree(survived.resolve("report.json").toFile()).get("layers")) {
      executors.add(layer.get("executor").asText());
    }
    assertThat(executors).as("scoring ran on a replacement executor too").hasSizeGreaterThanOrEqualTo(2);
    assertThat(Files.readAllBytes(survived.resolve("model/model.safetensors"))).isEqualTo(Files.readAllBytes(cpu.resolve("model/model.safetensors")));
    assertThat(TestPruneJobMasks.read(spark, survived)).isEqualTo(TestPruneJobMasks.read(spark, cpu));
  }
}
