package dev.sparkprune.scoring.bench;

import dev.sparkprune.scoring.grad.GradientCollector;
import dev.sparkprune.scoring.grad.GradientPass;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The gradient pass's cost against a forward calibration pass over the same sequences in one
 * process: calibration = every block over every sequence with Wanda's statistics (sum of x^2 per
 * input group) collected by the hook; gradients = {@link GradientPass} (checkpointed forward,
 * backward with recomputation, per-sample l2/l1/sum accumulation of every linear). Both
 * block-major, each sequence alone, as a job's task would run them. Run by hand:
 * {@code java -cp ... dev.sparkprune.scoring.bench.GradientBenchmark MODEL [SEQUENCES [LENGTH [ROUNDS]]]}.
 */
public final class GradientBenchmark {
  private GradientBenchmark() {}

  public static void main(String[] args) throws IOException {
    int sequences = args.length > 1 ? Integer.parseInt(args[1]) : 32;
    int length = args.length > 2 ? Integer.parseInt(args[2]) : 256;
    int rounds = args.length > 3 ? Integer.parseInt(args[3]) : 3;
    run(ModelArchive.open(new LocalFileIO(), args[0]), sequences, length, rounds, NetlibLinearAlgebra.defaultInstance(), System.out);
  }

  public static void run(ModelArchive archive, int sequences, int length, int rounds, LinearAlgebra linalg, PrintStream out) throws IOException {
    int vocab = archive.config().requireInt("vocab_size");
    int[][] tokens = new int[sequences][length];
    SplittableRandom random = new SplittableRandom(3);
    for (int[] sequence : tokens) {
      for (int t = 0; t < length; t++) {
        sequence[t] = random.nextInt(vocab);
      }
    }
    double[] forward = new double[rounds];
    double[] gradients = new double[rounds];
    try (DecoderModel model = Models.open(archive, linalg)) {
      out.printf(Locale.ROOT, "gradients: %s, %d blocks, %d sequences x %d tokens, %s%n", archive.location(), model.layout().blocks().size(),
          sequences, length, linalg.description());
      GradientPass pass = GradientPass.of(model);
      for (int round = -1; round < rounds; round++) {
        long start = System.nanoTime();
        calibrate(model, tokens, linalg);
        double calibration = (System.nanoTime() - start) / 1e9;
        start = System.nanoTime();
        GradientPass.Checkpoints checkpoints = pass.forward(tokens);
        long checkpointBytes = checkpoints.bytes();
        GradientCollector collector = new GradientCollector(Set.of());
        double loss = Arrays.stream(pass.backward(checkpoints, collector)).average().orElse(Double.NaN);
        double gradient = (System.nanoTime() - start) / 1e9;
        if (round < 0) {
          continue;
        }
        forward[round] = calibration;
        gradients[round] = gradient;
        out.printf(Locale.ROOT, "  round %d: calibration pass %.2f s, gradient pass %.2f s (%.2fx); checkpoints %.1f MB; mean loss %.4f%n",
            round + 1, calibration, gradient, gradient / calibration, checkpointBytes / 1e6, loss);
      }
    }
    double[] ratios = new double[rounds];
    for (int r = 0; r < rounds; r++) {
      ratios[r] = gradients[r] / forward[r];
    }
    Arrays.sort(forward);
    Arrays.sort(gradients);
    Arrays.sort(ratios);
    out.printf(Locale.ROOT, "  median: calibration %.2f s, gradients %.2f s, ratio %.2f (min %.2f, max %.2f) over %d rounds%n",
        forward[rounds / 2], gradients[rounds / 2], ratios[rounds / 2], ratios[0], ratios[rounds - 1], rounds);
  }

  /** A forward calibration pass: per block, every sequence with the statistics hook, no pruning. */
  private static void calibrate(DecoderModel model, int[][] tokens, LinearAlgebra linalg) throws IOException {
    HiddenStates[] hidden = new HiddenStates[tokens.length];
    for (int s = 0; s < tokens.length; s++) {
      hidden[s] = model.embed(new int[][] {tokens[s]});
    }
    for (int b = 0; b < model.layout().blocks().size(); b++) {
      BlockWeights weights = model.loadBlock(b);
      Map<String, CalibrationStatistics> statistics = new HashMap<>();
      InputHook hook = (linears, input, rows, sequences) -> statistics
          .computeIfAbsent(linears.get(0).inputGroup(), key -> CalibrationStatistics.create((int) linears.get(0).inFeatures(),
              CalibrationStatistics.HessianStorage.NONE))
          .add(input, 0, rows, sequences, linalg);
      for (int s = 0; s < tokens.length; s++) {
        hidden[s] = model.runBlock(weights, hidden[s], hook);
      }
    }
  }
}
