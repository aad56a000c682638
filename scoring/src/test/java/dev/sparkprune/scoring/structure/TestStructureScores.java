package dev.sparkprune.scoring.structure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Depth and width scores against direct computations. */
class TestStructureScores {
  @Test
  void flapFluctuationAndBiasCompensationEqualDirectFormulas() {
    // X [tokens x cols] with channel means far from zero, W [rows x cols].
    int tokens = 90;
    int rows = 5;
    int cols = 12;
    SplittableRandom random = new SplittableRandom(11);
    float[] x = new float[tokens * cols];
    for (int t = 0; t < tokens; t++) {
      for (int j = 0; j < cols; j++) {
        x[t * cols + j] = (float) (j * 0.3 + (j % 3 + 1) * (random.nextDouble() - 0.5));
      }
    }
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (random.nextDouble() - 0.5);
    }
    // The statistics as the shrink pass gathers them (a down_proj input through the hook), in two partials.
    dev.sparkprune.tensorio.arch.Linear down = new dev.sparkprune.tensorio.arch.Linear(0, "mlp.down_proj", "model.layers.0.mlp.down_proj.weight",
        rows, cols, false, "mlp.down_proj", null);
    WidthStatistics first = new WidthStatistics(0);
    WidthStatistics second = new WidthStatistics(0);
    first.accept(List.of(down), java.util.Arrays.copyOf(x, 40 * cols), 40, 1);
    second.accept(List.of(down), java.util.Arrays.copyOfRange(x, 40 * cols, tokens * cols), tokens - 40, 1);
    WidthStatistics statistics = first.plus(second);
    assertThat(statistics.downTokens()).isEqualTo(tokens);
    double[] scores = WidthScores.fluctuation(
        WidthScores.columnNorms(w, rows, cols), statistics.downInputSums(), statistics.downInputSumSquares(), statistics.downTokens());
    int[] kept = {0, 2, 3, 7, 8, 11};
    double[] bias = WidthScores.biasCompensation(w, rows, cols, kept, statistics.downInputSums(), statistics.downTokens());
    for (int j = 0; j < cols; j++) {
      // Direct: two-pass sample variance of column j, times sum_r W[r][j]^2.
      double mean = 0;
      for (int t = 0; t < tokens; t++) {
        mean += x[t * cols + j];
      }
      mean /= tokens;
      double variance = 0;
      for (int t = 0; t < tokens; t++) {
        variance += (x[t * cols + j] - mean) * (x[t * cols + j] - mean);
      }
      variance /= tokens - 1;
      double norm = 0;
      for (int r = 0; r < rows; r++) {
        norm += (double) w[r * cols + j] * w[r * cols + j];
      }
      assertThat(scores[j]).isCloseTo(variance * norm, within(1e-9 * Math.max(1, variance * norm)));
    }
    // Direct: the mean over tokens of the removed channels' contribution to each output.
    java.util.Set<Integer> keep = new java.util.HashSet<>();
    for (int j : kept) {
      keep.add(j);
    }
    for (int r = 0; r < rows; r++) {
      double sum = 0;
      for (int t = 0; t < tokens; t++) {
        for (int j = 0; j < cols; j++) {
          if (!keep.contains(j)) {
            sum += (double) x[t * cols + j] * w[r * cols + j];
          }
        }
      }
      assertThat(bias[r]).isCloseTo(sum / tokens, within(1e-9));
    }
    assertThatThrownBy(() -> WidthScores.fluctuation(new double[2], new double[2], new double[2], 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot score channels by fluctuation: 1 calibration tokens, need at least 2");
    assertThatThrownBy(() -> ShrinkSettings.WidthMetric.parse("variance"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid width metric variance: use activation, weight-norm, flap or taylor");
  }

  @Test
  void depthScoresOfStories260KEqualDirectSumsAndFoldOverChunks() throws IOException {
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString());
    int[][] batch = new int[4][48];
    SplittableRandom random = new SplittableRandom(3);
    for (int[] sequence : batch) {
      sequence[0] = 1;
      for (int t = 1; t < sequence.length; t++) {
        sequence[t] = 3 + random.nextInt(500);
      }
    }
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      int blocks = model.layout().blocks().size();
      // Inputs of every block and the last output, for the direct sums.
      List<float[]> inputs = new ArrayList<>();
      HiddenStates h = model.embed(batch);
      DepthScores.Accumulator whole = new DepthScores.Accumulator(blocks, 3);
      DepthScores.Accumulator first = new DepthScores.Accumulator(blocks, 3);
      DepthScores.Accumulator second = new DepthScores.Accumulator(blocks, 3);
      for (int b = 0; b < blocks; b++) {
        HiddenStates out = model.runBlock(model.loadBlock(b), h, InputHook.NONE);
        inputs.add(h.values());
        whole.observe(b, h.values(), out.values(), h.tokens(), h.width());
        first.observe(b, h.slice(0, 2).values(), out.slice(0, 2).values(), 2 * h.length(), h.width());
        second.observe(b, h.slice(2, 2).values(), out.slice(2, 2).values(), 2 * h.length(), h.width());
        h = out;
      }
      inputs.add(h.values());
      DepthScores scores = whole.result();
      DepthScores folded = first.result().plus(second.result());
      int tokens = batch.length * batch[0].length;
      int width = h.width();
      for (int b = 0; b < blocks; b++) {
        double influence = 0;
        for (int t = 0; t < tokens; t++) {
          influence += 1 - directCosine(inputs.get(b), inputs.get(b + 1), t, width);
        }
        assertThat(scores.blockInfluence(b)).isCloseTo(influence / tokens, within(1e-12));
        assertThat(folded.blockInfluence(b)).isCloseTo(influence / tokens, within(1e-12));
        for (int n = 1; n <= 3 && b + n < blocks; n++) {
          double angle = 0;
          for (int t = 0; t < tokens; t++) {
            angle += Math.acos(Math.min(1, directCosine(inputs.get(b), inputs.get(b + n), t, width))) / Math.PI;
          }
          assertThat(folded.angularDistance(b, n)).isCloseTo(angle / tokens, within(1e-12));
        }
      }
      for (int n = 1; n <= 3; n++) {
        int best = 0;
        for (int l = 1; l + n < blocks; l++) {
          best = scores.angularDistance(l, n) < scores.angularDistance(best, n) ? l : best;
        }
        List<Integer> expected = new ArrayList<>();
        for (int b = best; b < best + n; b++) {
          expected.add(b);
        }
        assertThat(scores.dropByAngularDistance(n)).isEqualTo(expected);
        assertThat(scores.dropByBlockInfluence(n)).hasSize(n).doesNotContain(blocks - 1);
      }
      assertThatThrownBy(() -> scores.dropByBlockInfluence(blocks))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Cannot drop 5 of 5 blocks: the last block is always kept, so drop between 1 and 4");
    }
  }

  private static double directCosine(float[] a, float[] b, int t, int width) {
    double dot = 0;
    double na = 0;
    double nb = 0;
    for (int c = 0; c < width; c++) {
      dot += (double) a[t * width + c] * b[t * width + c];
      na += (double) a[t * width + c] * a[t * width + c];
      nb += (double) b[t * width + c] * b[t * width + c];
    }
    return dot / Math.sqrt(na * nb);
  }

  @Test
  void activationAwareChannelScoreIsTheFrobeniusNormOfTheRemovalError() {
    SplittableRandom random = new SplittableRandom(5);
    int tokens = 20;
    int hidden = 6;
    int intermediate = 10;
    float[] x = new float[tokens * intermediate];
    float[] down = new float[hidden * intermediate];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) random.nextGaussian() * (1 + i % intermediate);
    }
    for (int i = 0; i < down.length; i++) {
      down[i] = (float) random.nextGaussian();
    }
    WidthStatistics statistics = new WidthStatistics(0);
    var linear = new dev.sparkprune.tensorio.arch.Linear(0, "mlp.down_proj", "down", hidden, intermediate, false, "g", null);
    statistics.accept(List.of(linear), x, tokens, 1);
    double[] scores = WidthScores.mlpChannels(down, hidden, intermediate, statistics.downInputSumSquares());
    for (int j = 0; j < intermediate; j++) {
      // ‖Y − Y with channel j removed‖_F over the tokens, computed as the full difference.
      double squares = 0;
      for (int t = 0; t < tokens; t++) {
        for (int r = 0; r < hidden; r++) {
          double change = (double) x[t * intermediate + j] * down[r * intermediate + j];
          squares += change * change;
        }
      }
      assertThat(scores[j]).isCloseTo(Math.sqrt(squares), within(1e-9 * Math.sqrt(squares)));
    }
    assertThat(WidthScores.topIndices(new double[] {3, 1, 3, 2, 5}, 3)).containsExactly(0, 2, 4);
  }

  @Test
  void keepCountsRoundAndRefuseFractionsOutsideTheUnitInterval() {
    assertThat(KeepCounts.mlpChannels(172, 0.75)).isEqualTo(128);
    assertThat(KeepCounts.mlpChannels(172, 0.5)).isEqualTo(88);
    assertThat(KeepCounts.mlpChannels(172, 1)).isEqualTo(172);
    assertThat(KeepCounts.mlpChannels(172, 0.01)).isEqualTo(8);
    assertThat(KeepCounts.kvGroups(4, 0.75)).isEqualTo(3);
    assertThat(KeepCounts.experts(8, 0.5)).isEqualTo(4);
    assertThat(KeepCounts.droppedBlocks(5, 0.25)).isEqualTo(1);
    assertThatThrownBy(() -> KeepCounts.mlpChannels(172, 1.5))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid MLP keep fraction 1.5: give a fraction in (0, 1] of the structures to keep");
    assertThatThrownBy(() -> KeepCounts.kvGroups(4, 0))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid heads keep fraction 0.0: give a fraction in (0, 1] of the structures to keep");
    assertThatThrownBy(() -> KeepCounts.droppedBlocks(5, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot drop 5 of 5 blocks (a fraction of 1.0): that removes every block; the last block is always kept");
  }
}
