package dev.sparkprune.scoring.bench;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Tokens/s of the block-wise forward pass on a generated Llama-style model, and the share of
 * time spent in the linears (GEMMs whose row count is the batch's token count; attention's
 * GEMMs are per sequence) with the linears' GFLOP/s against this machine's sgemm figure.
 */
public final class ForwardBenchmark {
  private ForwardBenchmark() {}

  /** Counts time and flops of the linears' GEMMs, passing every call through. */
  private static final class TimedLinearAlgebra implements LinearAlgebra {
    private final LinearAlgebra delegate;
    private final int linearRows;
    long linearNanos;
    double linearFlops;

    TimedLinearAlgebra(LinearAlgebra delegate, int linearRows) {
      this.delegate = delegate;
      this.linearRows = linearRows;
    }

    @Override
    public String description() {
      return delegate.description();
    }

    @Override
    public void gemm(int m, int n, int k, float alpha, float[] a, int aOffset, int lda, float[] b, int bOffset, int ldb,
        float beta, float[] c, int cOffset, int ldc) {
      delegate.gemm(m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);
    }

    @Override
    public void gemmTransposedB(int m, int n, int k, float alpha, float[] a, int aOffset, int lda, float[] b, int bOffset,
        int ldb, float beta, float[] c, int cOffset, int ldc) {
      long start = System.nanoTime();
      delegate.gemmTransposedB(m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);
      if (m == linearRows) {
        linearNanos += System.nanoTime() - start;
        linearFlops += 2.0 * m * n * k;
      }
    }

    @Override
    public void gramLower(int n, int k, float[] x, int xOffset, float[] c) {
      delegate.gramLower(n, k, x, xOffset, c);
    }

    @Override
    public boolean upperCholeskyOfInverse(double[] a, int n) {
      return delegate.upperCholeskyOfInverse(a, n);
    }
  }

  public static void run(Path directory, int rounds, LinearAlgebra linalg, double sgemmGflops, PrintStream out) throws IOException {
    Path archive = directory.resolve("bench-llama");
    SyntheticArchive.builder(SyntheticArchive.llamaConfig(1024, 8, 16, 4, 2816, 32000))
        .dtype(DType.BF16)
        .seed(1)
        .build()
        .write(new LocalFileIO(), archive.toString());
    out.printf(Locale.ROOT, "forward: Llama-style hidden 1024, 8 blocks, 16 heads, 4 KV heads, intermediate 2816, vocab 32000, BF16 weights;"
        + " batch 8 x seqlen 512, %s%n", linalg.description());
    run(ModelArchive.open(new LocalFileIO(), archive.toString()), 8, 512, rounds, linalg, sgemmGflops, out);
  }

  /** The same measurement on a given archive (e.g. a shrunk one, against its source), batch sequences x length. */
  public static void run(ModelArchive archive, int sequences, int length, int rounds, LinearAlgebra linalg, double sgemmGflops,
      PrintStream out) throws IOException {
    int vocab = archive.config().requireInt("vocab_size");
    int[][] tokens = new int[sequences][length];
    SplittableRandom random = new SplittableRandom(2);
    for (int[] sequence : tokens) {
      for (int t = 0; t < length; t++) {
        sequence[t] = random.nextInt(vocab);
      }
    }
    TimedLinearAlgebra timed = new TimedLinearAlgebra(linalg, sequences * length);
    double[] rates = new double[rounds];
    try (DecoderModel model = Models.open(archive, timed)) {
      int blocks = model.layout().blocks().size();
      for (int round = -1; round < rounds; round++) {
        timed.linearNanos = 0;
        timed.linearFlops = 0;
        long start = System.nanoTime();
        long loadNanos = 0;
        HiddenStates hidden0 = model.embed(tokens);
        for (int b = 0; b < blocks; b++) {
          long load = System.nanoTime();
          var weights = model.loadBlock(b);
          loadNanos += System.nanoTime() - load;
          hidden0 = model.runBlock(weights, hidden0, InputHook.NONE);
        }
        double nll = Arrays.stream(model.meanNll(hidden0, tokens)).sum();
        double seconds = (System.nanoTime() - start) / 1e9;
        if (round < 0) {
          continue;
        }
        rates[round] = sequences * length / seconds;
        double linearSeconds = timed.linearNanos / 1e9;
        out.printf(Locale.ROOT,
            "  round %d: %.2f s, %.0f tokens/s; linears %.2f s (%.0f%% of the time) at %.0f GFLOP/s (%.0f%% of sgemm %.0f);"
                + " weight reads %.2f s (nll %.3f)%n",
            round + 1, seconds, rates[round], linearSeconds, 100 * linearSeconds / seconds, timed.linearFlops / linearSeconds / 1e9,
            100 * timed.linearFlops / linearSeconds / 1e9 / sgemmGflops, sgemmGflops, loadNanos / 1e9, nll / sequences);
      }
    }
    Arrays.sort(rates);
    out.printf(Locale.ROOT, "  forward: median %.0f tokens/s (min %.0f, max %.0f) over %d rounds%n", rates[rounds / 2], rates[0], rates[rounds - 1], rounds);
  }
}
