package dev.sparkprune.jobs.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.apache.spark.SparkConf;
import org.apache.spark.resource.ResourceID;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.resource.ResourceRequest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** conf/getGpusResources.sh and the Java plugin, against a stand-in nvidia-smi. */
class TestGpuDiscovery {
  private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

  @TempDir Path dir;

  private Path fakeNvidiaSmi(String output) throws IOException {
    Path bin = Files.createDirectories(dir.resolve("bin"));
    Path command = bin.resolve("nvidia-smi");
    Files.writeString(command, "#!/bin/sh\n[ \"$1\" = --query-gpu=index ] || exit 3\nprintf '" + output + "'\n");
    command.toFile().setExecutable(true);
    return command;
  }

  private static ResourceRequest gpuRequest() {
    return new ResourceRequest(new ResourceID("spark.executor", "gpu"), 1, Optional.empty(), Optional.empty());
  }

  @Test
  void pluginListsNvidiaSmiIndices() throws IOException {
    Path command = fakeNvidiaSmi("0\\n1\\n 2\\n");
    SparkConf conf = new SparkConf(false).set(NvidiaSmiDiscoveryPlugin.COMMAND, command.toString());
    Optional<ResourceInformation> gpus = new NvidiaSmiDiscoveryPlugin().discoverResource(gpuRequest(), conf);
    if (System.getenv("CUDA_VISIBLE_DEVICES") == null) {
      assertThat(gpus.orElseThrow().addresses()).containsExactly("0", "1", "2");
    }
    assertThat(new NvidiaSmiDiscoveryPlugin().discoverResource(
        new ResourceRequest(new ResourceID("spark.executor", "fpga"), 1, Optional.empty(), Optional.empty()), conf)).isEmpty();
    // A node without the driver answers nothing, so Spark tries the discovery script next.
    assertThat(NvidiaSmiDiscoveryPlugin.nvidiaSmi(dir.resolve("missing").toString())).isEmpty();
    Path garbled = fakeNvidiaSmi("No devices were found\\n");
    assertThatThrownBy(() -> NvidiaSmiDiscoveryPlugin.nvidiaSmi(garbled.toString())).hasMessageContaining("unexpected nvidia-smi output");
  }

  private String script(Map<String, String> environment) throws IOException, InterruptedException {
    ProcessBuilder builder = new ProcessBuilder("bash", ROOT.resolve("conf/getGpusResources.sh").toString()).redirectErrorStream(true);
    builder.environment().remove("CUDA_VISIBLE_DEVICES");
    builder.environment().putAll(environment);
    Process process = builder.start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
    return process.exitValue() + " " + output;
  }

  @Test
  void discoveryScriptPrintsSparkResourceJson() throws IOException, InterruptedException {
    fakeNvidiaSmi("0\\n1\\n");
    String path = dir.resolve("bin") + ":" + System.getenv("PATH");
    assertThat(script(Map.of("PATH", path))).isEqualTo("0 {\"name\": \"gpu\", \"addresses\": [\"0\", \"1\"]}");
    assertThat(script(Map.of("PATH", path, "CUDA_VISIBLE_DEVICES", "3,5,7"))).isEqualTo("0 {\"name\": \"gpu\", \"addresses\": [\"0\", \"1\", \"2\"]}");
    if (!Files.exists(Path.of("/usr/bin/nvidia-smi")) && !Files.exists(Path.of("/bin/nvidia-smi"))) {
      assertThat(script(Map.of("PATH", "/usr/bin:/bin"))).startsWith("1 getGpusResources.sh: nvidia-smi not found");
    }
  }
}
