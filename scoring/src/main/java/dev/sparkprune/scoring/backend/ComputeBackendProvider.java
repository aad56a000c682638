package dev.sparkprune.scoring.backend;

/**
 * A backend bound to an accelerator, found with {@link java.util.ServiceLoader}: the CUDA backend
 * registers one when the {@code cuda} profile puts it on the classpath.
 */
public interface ComputeBackendProvider {
  /** Short name for logs: "cuda". */
  String name();

  /**
   * A backend on the device with this address (as Spark's resource discovery reports it, e.g.
   * "0"). Throws, or fails to link, when the native libraries or the device are missing; callers
   * fall back to the CPU.
   */
  ComputeBackend open(String deviceAddress) throws Exception;
}
