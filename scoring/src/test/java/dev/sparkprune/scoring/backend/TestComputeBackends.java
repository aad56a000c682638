package dev.sparkprune.scoring.backend;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.ServiceConfigurationError;
import org.junit.jupiter.api.Test;

/** How a task's backend is chosen from its GPU addresses and the providers on the classpath. */
class TestComputeBackends {
  private static ComputeBackendProvider provider(String name, ComputeBackend backend, RuntimeException failure) {
    return new ComputeBackendProvider() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public ComputeBackend open(String deviceAddress) {
        if (failure != null) {
          throw failure;
        }
        return backend;
      }
    };
  }

  @Test
  void noAddressesMeansTheCpuWithoutAWarning() {
    List<String> warnings = new ArrayList<>();
    ComputeBackends.Choice choice = ComputeBackends.forDevices(List.of(), warnings::add);
    assertThat(choice.backend()).isSameAs(CpuBackend.defaultInstance());
    assertThat(choice.device()).isEmpty();
    assertThat(choice.fallbackReason()).isEmpty();
    assertThat(warnings).isEmpty();
  }

  @Test
  void theFirstProviderThatOpensWinsAndFailuresAreReported() {
    ComputeBackend gpu = new CpuBackend(CpuBackend.defaultInstance().linearAlgebra());
    List<String> warnings = new ArrayList<>();
    ComputeBackends.Choice chosen = ComputeBackends.open("1",
        List.of(provider("broken", null, new IllegalStateException("no driver")), provider("cuda", gpu, null)), warnings::add);
    assertThat(chosen.backend()).isSameAs(gpu);
    assertThat(chosen.device()).isEqualTo("1");
    assertThat(warnings).isEmpty();

    ComputeBackends.Choice failed = ComputeBackends.open("0",
        List.of(provider("cuda", null, new IllegalStateException("cudaSetDevice failed"))), warnings::add);
    assertThat(failed.backend()).isSameAs(CpuBackend.defaultInstance());
    assertThat(failed.fallbackReason()).isEqualTo("the GPU backend did not start (cuda: java.lang.IllegalStateException: cudaSetDevice failed)");
    assertThat(warnings).singleElement().asString().startsWith("Task was given GPU 0 but the GPU backend did not start");

    assertThat(ComputeBackends.open("0", List.of(), message -> { }).fallbackReason())
        .isEqualTo("no GPU backend on the classpath (build with the Maven profile -Pcuda)");
  }

  @Test
  void aBrokenServiceRegistrationFallsBackInsteadOfFailingTheTask() {
    Iterable<ComputeBackendProvider> broken = () -> new Iterator<>() {
      private boolean thrown;

      @Override
      public boolean hasNext() {
        if (!thrown) {
          thrown = true;
          throw new ServiceConfigurationError("Provider dev.example.Missing not found");
        }
        return false;
      }

      @Override
      public ComputeBackendProvider next() {
        throw new NoSuchElementException();
      }
    };
    ComputeBackends.Choice choice = ComputeBackends.open("0", broken, message -> { });
    assertThat(choice.backend()).isSameAs(CpuBackend.defaultInstance());
    assertThat(choice.fallbackReason()).contains("Provider dev.example.Missing not found");
  }
}
