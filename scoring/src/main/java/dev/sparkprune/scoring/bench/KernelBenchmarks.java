package dev.sparkprune.scoring.bench;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.methods.Admm;
import dev.sparkprune.scoring.methods.Dsnot;
import dev.sparkprune.scoring.methods.SparseGpt;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Benchmarks of the reference sizes: Wanda 50% on 4096 x 11008, SparseGPT 50% on
 * 4096 x 4096 with a given Hessian (and ADMM and DSnoT on the same layer), and X^T X over 32,768
 * tokens x 4096 channels. Each runs warm-up rounds, then timed rounds, and prints median, min
 * and max.
 */
public final class KernelBenchmarks {
  private KernelBenchmarks() {}

  /** A timed piece of work; returns a value so the JIT cannot drop it. */
  @FunctionalInterface
  private interface Work {
    double run();
  }

  private static double[] time(String name, int warmups, int rounds, Work work, PrintStream out) {
    double sink = 0;
    for (int i = 0; i < warmups; i++) {
      sink += work.run();
    }
    double[] seconds = new double[rounds];
    for (int i = 0; i < rounds; i++) {
      long start = System.nanoTime();
      sink += work.run();
      seconds[i] = (System.nanoTime() - start) / 1e9;
      out.printf(Locale.ROOT, "  %s round %d: %.3f s%n", name, i + 1, seconds[i]);
    }
    double[] sorted = seconds.clone();
    Arrays.sort(sorted);
    out.printf(
        Locale.ROOT,
        "  %s: median %.3f s, min %.3f, max %.3f over %d rounds (checksum %.3g)%n",
        name,
        sorted[rounds / 2],
        sorted[0],
        sorted[rounds - 1],
        rounds,
        sink);
    return seconds;
  }

  static float[] randomFloats(int count, long seed) {
    float[] values = new float[count];
    RowParallel.forEach(count, RowParallel.defaultThreads(), (start, end) -> {
      SplittableRandom random = new SplittableRandom(seed + start);
      for (int i = start; i < end; i++) {
        values[i] = (float) (random.nextDouble() * 2 - 1);
      }
    });
    return values;
  }

  public static double[] wanda(int rows, int cols, int rounds, int threads, PrintStream out) {
    Weights weights = Weights.of(rows, cols, randomFloats(rows * cols, 1));
    float[] scaler = randomFloats(cols, 2);
    for (int j = 0; j < cols; j++) {
      scaler[j] = Math.abs(scaler[j]);
    }
    out.printf(Locale.ROOT, "wanda: 50%% unstructured, per-row, %d x %d F32, %d threads%n", rows, cols, threads);
    return time(
        "wanda",
        2,
        rounds,
        () -> Wanda.prune("bench", weights, scaler, SparsityTarget.unstructured(0.5), Wanda.Group.ROW, CpuBackend.defaultInstance(), threads)
            .mask().prunedCount(),
        out);
  }

  /** Statistics of 2 * cols random tokens: a well-conditioned Hessian 2/n X^T X and the channel sums. */
  private static CalibrationStatistics randomStatistics(int cols, LinearAlgebra linalg) {
    int tokens = 2 * cols;
    CalibrationStatistics statistics = CalibrationStatistics.create(cols, CalibrationStatistics.HessianStorage.DOUBLE);
    statistics.add(randomFloats(tokens * cols, 4), 0, tokens, 16, linalg);
    return statistics;
  }

  public static double[] sparseGpt(int rows, int cols, int rounds, int threads, LinearAlgebra linalg, PrintStream out) {
    Weights weights = Weights.of(rows, cols, randomFloats(rows * cols, 3));
    double[] hessian = randomStatistics(cols, linalg).hessian();
    out.printf(Locale.ROOT, "sparsegpt: 50%% unstructured, %d x %d, block 128, %s, %d threads%n", rows, cols, linalg.description(), threads);
    return time(
        "sparsegpt",
        1,
        rounds,
        () -> {
          PruneResult result =
              SparseGpt.prune("bench", weights, hessian, SparsityTarget.unstructured(0.5), 0.01, 128, new CpuBackend(linalg), threads);
          return result.reconstructionLoss().orElse(0);
        },
        out);
  }

  /** ADMM's default 20 iterations on a Wanda 50% mask (the mask's cost excluded), as {@link #sparseGpt}'s layer. */
  public static double[] admm(int rows, int cols, int rounds, int threads, LinearAlgebra linalg, PrintStream out) {
    Weights weights = Weights.of(rows, cols, randomFloats(rows * cols, 3));
    CalibrationStatistics statistics = randomStatistics(cols, linalg);
    double[] hessian = statistics.hessian();
    CpuBackend backend = new CpuBackend(linalg);
    Mask mask = Wanda.prune("bench", weights, statistics.scalerRow(), SparsityTarget.unstructured(0.5), Wanda.Group.ROW, backend, threads)
        .mask();
    out.printf(Locale.ROOT, "admm: 50%% unstructured Wanda mask, %d x %d, %d iterations, %s, %d threads%n",
        rows, cols, Admm.DEFAULTS.iterations(), linalg.description(), threads);
    return time("admm", 1, rounds, () -> Admm.update("bench", weights, mask, hessian, Admm.DEFAULTS, backend, threads).weights()[0], out);
  }

  /** DSnoT's default 50 cycles on a Wanda 50% mask (the mask's cost excluded). */
  public static double[] dsnot(int rows, int cols, int rounds, int threads, LinearAlgebra linalg, PrintStream out) {
    Weights weights = Weights.of(rows, cols, randomFloats(rows * cols, 3));
    CalibrationStatistics statistics = randomStatistics(cols, linalg);
    SparsityTarget target = SparsityTarget.unstructured(0.5);
    Mask mask = Wanda.prune("bench", weights, statistics.scalerRow(), target, Wanda.Group.ROW, new CpuBackend(linalg), threads).mask();
    out.printf(Locale.ROOT, "dsnot: 50%% unstructured Wanda mask, %d x %d, %d cycles, %d threads%n",
        rows, cols, Dsnot.DEFAULTS.maxCycles(), threads);
    return time("dsnot", 2, rounds,
        () -> Dsnot.refine("bench", weights, mask, statistics, target, Dsnot.DEFAULTS, threads).mask().prunedCount(), out);
  }

  public static double[] hessian(int tokens, int channels, int rounds, LinearAlgebra linalg, PrintStream out) {
    float[] x = randomFloats(tokens * channels, 5);
    out.printf(Locale.ROOT, "hessian: X^T X for %d tokens x %d channels, %s%n", tokens, channels, linalg.description());
    double[] seconds =
        time(
            "hessian",
            1,
            rounds,
            () -> {
              CalibrationStatistics statistics = CalibrationStatistics.create(channels, CalibrationStatistics.HessianStorage.DOUBLE);
              statistics.add(x, 0, tokens, 16, linalg);
              return statistics.tokens();
            },
            out);
    double[] sorted = seconds.clone();
    Arrays.sort(sorted);
    double gemmFlops = 2.0 * tokens * channels * channels;
    out.printf(
        Locale.ROOT,
        "  hessian: %.0f GFLOP/s GEMM-equivalent (2 k n^2 / median time; SYRK does half the multiply-adds)%n",
        gemmFlops / sorted[rounds / 2] / 1e9);
    return seconds;
  }

  /** Raw sgemm throughput of n x n x n, for the forward-pass share-of-peak figure. */
  public static double sgemmGflops(int n, int rounds, LinearAlgebra linalg, PrintStream out) {
    float[] a = randomFloats(n * n, 6);
    float[] b = randomFloats(n * n, 7);
    float[] c = new float[n * n];
    out.printf(Locale.ROOT, "sgemm: %d x %d x %d, %s%n", n, n, n, linalg.description());
    double[] seconds =
        time(
            "sgemm",
            1,
            rounds,
            () -> {
              linalg.gemm(n, n, n, 1f, a, 0, n, b, 0, n, 0f, c, 0, n);
              return c[0];
            },
            out);
    Arrays.sort(seconds);
    double gflops = 2.0 * n * n * n / seconds[rounds / 2] / 1e9;
    out.printf(Locale.ROOT, "  sgemm: %.0f GFLOP/s at the median%n", gflops);
    return gflops;
  }
}
