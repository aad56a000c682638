package dev.sparkprune.scoring.backend.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparkprune.scoring.Fixture;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.ComputeBackends;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.methods.SparseGpt;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The CUDA backend against the CPU backend: kernels on random inputs, and Wanda and SparseGPT on
 * the golden fixtures. Skipped without a usable GPU, except the fallback check, which runs only
 * without one.
 */
class TestCudaBackend {
  private static ComputeBackend cuda;
  private static String unavailable;
  private static final CpuBackend CPU = CpuBackend.defaultInstance();

  @BeforeAll
  static void open() {
    try {
      cuda = new CudaBackendProvider().open("0");
    } catch (Exception | LinkageError e) {
      unavailable = e.toString();
    }
  }

  private static void assumeGpu() {
    assumeTrue(cuda != null, "no usable CUDA device: " + unavailable);
  }

  @Test
  void withoutAGpuATaskGivenOneFallsBackToTheCpuAndSaysWhy() {
    assumeTrue(cuda == null, "a GPU is present: the fallback is not exercised");
    List<String> warnings = new ArrayList<>();
    ComputeBackends.Choice choice = ComputeBackends.forDevices(List.of("0"), warnings::add);
    assertThat(choice.backend()).isSameAs(CPU);
    assertThat(choice.fallbackReason()).startsWith("the GPU backend did not start (cuda: ");
    assertThat(warnings).singleElement().asString().contains("Task was given GPU 0").contains("scoring on the CPU");
  }

  private static float[] random(int size, long seed) {
    Random random = new Random(seed);
    float[] values = new float[size];
    for (int i = 0; i < size; i++) {
      values[i] = (float) random.nextGaussian();
    }
    return values;
  }

  private static void assertClose(float[] actual, float[] expected, float tolerance, String what) {
    float worst = 0;
    for (int i = 0; i < expected.length; i++) {
      worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i])));
    }
    assertThat(worst).as("largest relative difference in %s", what).isLessThanOrEqualTo(tolerance);
  }

  @Test
  void gemmAndGramMatchTheCpu() {
    assumeGpu();
    LinearAlgebra gpu = cuda.linearAlgebra();
    LinearAlgebra cpu = CPU.linearAlgebra();
    int m = 700;
    int n = 900;
    int k = 600;
    float[] a = random(m * k, 1);
    float[] b = random(k * n, 2);
    float[] bt = random(n * k, 3);
    float[] c0 = random(m * n, 4);
    float[] expected = c0.clone();
    float[] actual = c0.clone();
    cpu.gemm(m, n, k, 0.5f, a, 0, k, b, 0, n, 2f, expected, 0, n);
    gpu.gemm(m, n, k, 0.5f, a, 0, k, b, 0, n, 2f, actual, 0, n);
    assertClose(actual, expected, 1e-4f, "gemm");
    expected = new float[m * n];
    actual = new float[m * n];
    cpu.gemmTransposedB(m, n, k, 1f, a, 0, k, bt, 0, k, 0f, expected, 0, n);
    gpu.gemmTransposedB(m, n, k, 1f, a, 0, k, bt, 0, k, 0f, actual, 0, n);
    assertClose(actual, expected, 1e-4f, "gemm with B transposed");

    int channels = 1024;
    int tokens = 512;
    float[] x = random(tokens * channels, 5);
    float[] gramCpu = new float[channels * channels];
    float[] gramGpu = new float[channels * channels];
    cpu.gramLower(channels, tokens, x, 0, gramCpu);
    gpu.gramLower(channels, tokens, x, 0, gramGpu);
    for (int i = 0; i < channels; i++) {
      for (int j = 0; j <= i; j++) {
        float e = gramCpu[i * channels + j];
        assertThat(Math.abs(gramGpu[i * channels + j] - e)).isLessThanOrEqualTo(1e-3f * (1 + Math.abs(e)));
      }
    }
  }

  @Test
  void choleskyOfTheInverseMatchesTheCpu() {
    assumeGpu();
    int n = 300;
    float[] x = random(2 * n * n, 6);
    float[] gram = new float[n * n];
    CPU.linearAlgebra().gramLower(n, 2 * n, x, 0, gram);
    double[] h = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j <= i; j++) {
        h[i * n + j] = gram[i * n + j];
        h[j * n + i] = gram[i * n + j];
      }
      h[i * n + i] += 1;
    }
    double[] onCpu = h.clone();
    double[] onGpu = h.clone();
    assertThat(CPU.linearAlgebra().upperCholeskyOfInverse(onCpu, n)).isTrue();
    assertThat(cuda.linearAlgebra().upperCholeskyOfInverse(onGpu, n)).isTrue();
    for (int i = 0; i < n * n; i++) {
      assertThat(onGpu[i]).isCloseTo(onCpu[i], org.assertj.core.data.Offset.offset(1e-9 * (1 + Math.abs(onCpu[i]))));
    }
    double[] indefinite = h.clone();
    indefinite[0] = -1;
    assertThat(cuda.linearAlgebra().upperCholeskyOfInverse(indefinite, n)).isFalse();
  }

  @Test
  void wandaAndSparseGptOnTheGoldenFixturesMatchTheCpu() {
    assumeGpu();
    for (String name : Fixture.NAMES) {
      Fixture fixture = Fixture.load(name);
      for (String tag : Fixture.TAGS) {
        PruneResult wanda =
            Wanda.prune("W", fixture.weights(), fixture.floats("wanda_scaler_row"), Fixture.target(tag), Wanda.Group.ROW, cuda, 2);
        assertThat(wanda.mask()).isEqualTo(fixture.mask("wanda", tag));
        PruneResult gpu =
            SparseGpt.prune("W", fixture.weights(), fixture.hessian(), Fixture.target(tag), 0.01, SparseGpt.DEFAULT_BLOCK_SIZE, cuda, 2);
        PruneResult cpu =
            SparseGpt.prune("W", fixture.weights(), fixture.hessian(), Fixture.target(tag), 0.01, SparseGpt.DEFAULT_BLOCK_SIZE, CPU, 2);
        Mask reference = fixture.mask("sparsegpt", tag);
        assertThat(gpu.mask()).as("%s %s mask", name, tag).isEqualTo(reference);
        assertClose(gpu.weights(), cpu.weights(), 1e-4f, name + " " + tag + " SparseGPT weights");
        assertClose(gpu.weights(), fixture.floats("sparsegpt_" + tag + "_weight"), 1e-4f, name + " " + tag + " vs reference");
      }
    }
  }
}
