package dev.sparkprune.jobs.gpu;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.apache.spark.SparkConf;
import org.apache.spark.api.resource.ResourceDiscoveryPlugin;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.resource.ResourceRequest;

/**
 * GPU discovery without a script file to ship: set
 * {@code spark.resources.discoveryPlugin=dev.sparkprune.jobs.gpu.NvidiaSmiDiscoveryPlugin}. Lists
 * the GPUs {@code nvidia-smi} sees (CUDA_VISIBLE_DEVICES narrows them, renumbered from 0 as CUDA
 * does). For other resources, or where nvidia-smi is missing, it answers nothing and Spark asks
 * the next plugin or the discovery script. {@value #COMMAND} overrides the command's path (the
 * deprecated spelling {@value #DEPRECATED_COMMAND} is still read after it).
 */
public final class NvidiaSmiDiscoveryPlugin implements ResourceDiscoveryPlugin {
  public static final String COMMAND = "spark.sparkprune.nvidia-smi";

  /** The key's spelling before release 0.2. */
  @Deprecated
  public static final String DEPRECATED_COMMAND = "spark.sparkprune.nvidiaSmi";

  private static final long TIMEOUT_SECONDS = 30;

  @Override
  public Optional<ResourceInformation> discoverResource(ResourceRequest request, SparkConf conf) {
    if (!request.id().resourceName().equals("gpu")) {
      return Optional.empty();
    }
    String visible = System.getenv("CUDA_VISIBLE_DEVICES");
    List<String> addresses = visible != null && !visible.isBlank() ? renumbered(visible) : nvidiaSmi(conf.get(COMMAND, conf.get(DEPRECATED_COMMAND, "nvidia-smi")));
    return addresses.isEmpty() ? Optional.empty() : Optional.of(new ResourceInformation("gpu", addresses.toArray(String[]::new)));
  }

  private static List<String> renumbered(String visible) {
    List<String> addresses = new ArrayList<>();
    for (String device : visible.split(",")) {
      if (!device.isBlank()) {
        addresses.add(String.valueOf(addresses.size()));
      }
    }
    return addresses;
  }

  /** GPU indices from {@code nvidia-smi --query-gpu=index}; none when the command is missing or fails. */
  static List<String> nvidiaSmi(String command) {
    List<String> addresses = new ArrayList<>();
    try {
      Process process = new ProcessBuilder(command, "--query-gpu=index", "--format=csv,noheader").redirectErrorStream(false).start();
      String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new IllegalStateException("GPU discovery: " + command + " did not answer in " + TIMEOUT_SECONDS + " s");
      }
      if (process.exitValue() != 0) {
        return addresses;
      }
      for (String line : output.split("\n")) {
        String index = line.trim();
        if (index.isEmpty()) {
          continue;
        }
        if (!index.chars().allMatch(Character::isDigit)) {
          throw new IllegalStateException("GPU discovery: unexpected nvidia-smi output line '" + index + "'");
        }
        addresses.add(index);
      }
    } catch (IOException e) {
      // No nvidia-smi on this node: no GPUs from this plugin.
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return addresses;
  }
}
