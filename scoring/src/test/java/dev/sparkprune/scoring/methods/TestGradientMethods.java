package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.backend.CpuBackend;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * GBLM and Pruner-Zero against a direct computation written here: the authors' scores in double
 * and a stable sort of each row (or of each group of M columns) by score.
 */
class TestGradientMethods {
  private static final int ROWS = 24;
  private static final int COLS = 40;

  private static float[] random(long seed, int size, boolean positive) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] values = new float[size];
    for (int i = 0; i < size; i++) {
      double v = random.nextGaussian();
      values[i] = (float) (positive ? Math.abs(v) : v);
    }
    return values;
  }

  /** 1 = pruned: the k lowest scores of each group of {@code group} columns by a stable sort. */
  private static boolean[] lowest(double[] scores, int group, int k) {
    boolean[] pruned = new boolean[scores.length];
    for (int r = 0; r < ROWS; r++) {
      for (int start = 0; start < COLS; start += group) {
        int row = r;
        int first = start;
        Integer[] order = new Integer[group];
        for (int j = 0; j < group; j++) {
          order[j] = first + j;
        }
        Arrays.sort(order, Comparator.comparingDouble(c -> scores[row * COLS + c]));
        for (int j = 0; j < k; j++) {
          pruned[r * COLS + order[j]] = true;
        }
      }
    }
    return pruned;
  }

  private static void assertMask(Mask mask, boolean[] pruned, String what) {
    for (int i = 0; i < pruned.length; i++) {
      assertThat(mask.isKept(i / COLS, i % COLS)).as("%s [%d, %d]", what, i / COLS, i % COLS).isEqualTo(!pruned[i]);
    }
  }

  @Test
  void gblmPrunesTheLowestActivationPlusGradientScores() {
    float[] w = random(1, ROWS * COLS, false);
    float[] scaler = random(2, COLS, true);
    float[] g = random(3, ROWS * COLS, false);
    double[] scores = new double[w.length];
    for (int i = 0; i < w.length; i++) {
      scores[i] = Math.abs(w[i]) * Math.sqrt(scaler[i % COLS]) + Math.abs(w[i]) * Math.abs(g[i]);
    }
    Weights weights = Weights.of(ROWS, COLS, w);
    assertMask(Gblm.prune("l", weights, scaler, g, SparsityTarget.unstructured(0.5), CpuBackend.defaultInstance(), 2).mask(), lowest(scores, COLS, COLS / 2), "u50");
    assertMask(Gblm.prune("l", weights, scaler, g, SparsityTarget.nOfM(2, 4), CpuBackend.defaultInstance(), 2).mask(), lowest(scores, 4, 2), "2:4");
    float[] all = Gblm.scores("l", weights, scaler, g, 2);
    for (int i = 0; i < all.length; i++) {
      assertThat((double) all[i]).isCloseTo(scores[i], org.assertj.core.data.Offset.offset(1e-5 * scores[i]));
    }
  }

  @Test
  void prunerZeroPrunesTheLowestSquaredWeightTimesMinMaxScaledGradient() {
    float[] w = random(4, ROWS * COLS, false);
    float[] g = random(5, ROWS * COLS, true);
    double min = Double.MAX_VALUE;
    double max = -Double.MAX_VALUE;
    for (float v : g) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    double[] scores = new double[w.length];
    for (int i = 0; i < w.length; i++) {
      scores[i] = (double) w[i] * w[i] * (g[i] - min) / (max - min);
    }
    Weights weights = Weights.of(ROWS, COLS, w);
    assertMask(PrunerZero.prune("l", weights, g, SparsityTarget.unstructured(0.5), CpuBackend.defaultInstance(), 2).mask(), lowest(scores, COLS, COLS / 2), "u50");
    assertMask(PrunerZero.prune("l", weights, g, SparsityTarget.nOfM(2, 4), CpuBackend.defaultInstance(), 2).mask(), lowest(scores, 4, 2), "2:4");
  }

  @Test
  void aConstantGradientFallsBackToMagnitude() {
    float[] w = random(6, ROWS * COLS, false);
    double[] magnitude = new double[w.length];
    for (int i = 0; i < w.length; i++) {
      magnitude[i] = Math.abs(w[i]);
    }
    assertMask(PrunerZero.prune("l", Weights.of(ROWS, COLS, w), new float[w.length], SparsityTarget.unstructured(0.5), CpuBackend.defaultInstance(), 2).mask(),
        lowest(magnitude, COLS, COLS / 2), "constant G");
  }

  @Test
  void badGradientsFailWithOneLine() {
    Weights weights = Weights.of(2, 4, new float[8]);
    assertThatThrownBy(() -> Gblm.prune("blk.0.q", weights, new float[4], new float[7], SparsityTarget.unstructured(0.5), CpuBackend.defaultInstance(), 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer blk.0.q with GBLM: gradient statistics hold 7 values but the weight has 2 x 4");
    float[] nan = new float[8];
    nan[5] = Float.NaN;
    assertThatThrownBy(() -> PrunerZero.prune("blk.0.q", weights, nan, SparsityTarget.unstructured(0.5), CpuBackend.defaultInstance(), 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer blk.0.q with Pruner-Zero: gradient statistic [1, 1] is NaN");
  }
}
