package dev.sparkprune.jobs.spark;

import java.util.Objects;
import java.util.Optional;

/**
 * The GPUs a run's model stages ask for ({@link GpuScheduling}): per task (0: none, a whole
 * number, or at most 0.5 to share one), per new executor (0: the executor conf's or
 * ceil(perTask)), and the discovery script and vendor of new executors ("": the executor conf's).
 */
public record GpuRequest(double perTask, int perExecutor, String discoveryScript, String vendor) {
  public static final GpuRequest NONE = new GpuRequest(0, 0, "", "");

  public GpuRequest {
    Objects.requireNonNull(discoveryScript, "discoveryScript is null");
    Objects.requireNonNull(vendor, "vendor is null");
  }

  Optional<String> script() {
    return discoveryScript.isEmpty() ? Optional.empty() : Optional.of(discoveryScript);
  }

  Optional<String> vendorName() {
    return vendor.isEmpty() ? Optional.empty() : Optional.of(vendor);
  }
}
