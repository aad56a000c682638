package dev.sparkprune.jobs.prune;

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
 * The other shape of GPU scheduling: dynamic allocation on, executors without GPUs by default,
 * and the calibration and scoring stages asking Spark for executors with one GPU each through a
 * full resource profile. Two workers with two cores and one (fake-discovered) GPU each.
 */
class GpuExecutorsOnLocalClusterIT {
  private static SparkSession spark;

  @TempDir static Path dir;

  @BeforeAll
  static void start() {
    spark = LocalClusterSessions.start("local-cluster[2,2,2048]", Map.of(
        "spark.resources.discoveryPlugin", FakeGpuDiscoveryPlugin.class.getName(),
        "spark.worker.resource.gpu.amount", "1",
        "spark.executor.cores", "1",
        "spark.executor.memory", "900m",
        "spark.dynamicAllocation.enabled", "true",
        "spark.dynamicAllocation.shuffleTracking.enabled", "true",
        // Per profile: two default executors and two GPU executors fill the four cores.
        "spark.dynamicAllocation.maxExecutors", "2"));
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  private static Path run(String name, double gpusPerTask) throws IOException {
    Path out = dir.resolve(name);
    PruneOptions options = PruneOptions.builder().model(SharedData.stories260K().toString()).out(out.toString())
        .method(PruningMethod.WANDA).target(SparsityTarget.unstructured(0.5))
        .calibration(SharedData.path("data/tinystories/tinystories_val_sample.txt").toString()).nsamples(4).seqlen(64).seed(3)
        .gpusPerTask(gpusPerTask).build();
    new PruneJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
    return out;
  }

  @Test
  void gpuStagesRunOnExecutorsOfTheirOwnProfile() throws IOException {
    Path cpu = run("cpu", 0);
    Path gpu = run("gpu", 1);
    // Default executors have no GPU, so a task that saw one ran on an executor of the GPU profile.
    Set<String> gpuExecutors = new TreeSet<>();
    for (JsonNode layer : new ObjectMapper().readTree(gpu.resolve("report.json").toFile()).get("layers")) {
      assertThat(layer.path("gpu").asText()).as(layer.get("tensor").asText()).matches("[01]");
      gpuExecutors.add(layer.get("executor").asText());
    }
    Set<String> cpuExecutors = new TreeSet<>();
    for (JsonNode layer : new ObjectMapper().readTree(cpu.resolve("report.json").toFile()).get("layers")) {
      assertThat(layer.has("gpu")).isFalse();
      cpuExecutors.add(layer.get("executor").asText());
    }
    // The CPU run's executors are still up (idle timeout 60 s): the GPU stages got new ones.
    assertThat(gpuExecutors).isNotEmpty().doesNotContainAnyElementsOf(cpuExecutors);
    assertThat(TestPruneJobMasks.read(spark, gpu)).isEqualTo(TestPruneJobMasks.read(spark, cpu));
  }
}
