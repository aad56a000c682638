package dev.sparkprune.scoring.backend;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * Chooses a task's backend from the accelerator addresses Spark gave it. One backend per device
 * address per JVM: opening a CUDA context costs far more than a task should, and executors run
 * many tasks.
 */
public final class ComputeBackends {
  private static final Map<String, Choice> BY_ADDRESS = new ConcurrentHashMap<>();

  private ComputeBackends() {}

  /** The backend a task uses and, when it is not the one the task's resources asked for, why. */
  public static final class Choice {
    private final ComputeBackend backend;
    private final String device;
    private final String fallbackReason;

    Choice(ComputeBackend backend, String device, String fallbackReason) {
      this.backend = backend;
      this.device = device;
      this.fallbackReason = fallbackReason;
    }

    public ComputeBackend backend() {
      return backend;
    }

    /** The accelerator address the task was given ("" without one). */
    public String device() {
      return device;
    }

    /** Why a task that was given a GPU runs on the CPU; empty otherwise. */
    public String fallbackReason() {
      return fallbackReason;
    }
  }

  /**
   * The CPU backend for no addresses; otherwise a provider's backend on the first address, or the
   * CPU with {@code warn} told why (once per address and JVM) when no provider loads.
   */
  public static Choice forDevices(List<String> addresses, Consumer<String> warn) {
    if (addresses == null || addresses.isEmpty()) {
      return new Choice(CpuBackend.defaultInstance(), "", "");
    }
    String address = addresses.get(0);
    return BY_ADDRESS.computeIfAbsent(address, key -> open(key, ServiceLoader.load(ComputeBackendProvider.class), warn));
  }

  static Choice open(String address, Iterable<ComputeBackendProvider> providers, Consumer<String> warn) {
    List<String> failures = new ArrayList<>();
    Iterator<ComputeBackendProvider> iterator = providers.iterator();
    while (true) {
      ComputeBackendProvider provider;
      try {
        if (!iterator.hasNext()) {
          break;
        }
        provider = iterator.next();
      } catch (ServiceConfigurationError e) {
        // A broken registration (a provider class missing from the classpath) must not fail the task.
        failures.add(e.getMessage());
        continue;
      }
      try {
        return new Choice(provider.open(address), address, "");
      } catch (Exception | LinkageError e) {
        failures.add(provider.name() + ": " + e);
      }
    }
    String reason = failures.isEmpty()
        ? "no GPU backend on the classpath (build with the Maven profile -Pcuda)"
        : "the GPU backend did not start (" + String.join("; ", failures) + ")";
    warn.accept("Task was given GPU " + address + " but " + reason + "; scoring on the CPU");
    return new Choice(CpuBackend.defaultInstance(), address, reason);
  }
}
