package dev.sparkprune.scoring.methods;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * DSnoT against a direct simulation of its rules: candidate sets searched afresh every cycle
 * (argmax / argmin over what is left) instead of the kernel's sorted lists and pointers.
 */
class TestDsnot {
  private static final ComputeBackend CPU = CpuBackend.defaultInstance();

  private record Case(Weights weights, float[] scaler, float[] means, float[] variance) {}

  private static Case randomCase(int rows, int cols, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) random.nextGaussian();
    }
    float[] scaler = new float[cols];
    float[] means = new float[cols];
    float[] variance = new float[cols];
    for (int j = 0; j < cols; j++) {
      scaler[j] = (float) (0.1 + 3 * random.nextDouble());
      // Channel means of either sign, large enough that rows start far above the threshold.
      means[j] = (float) (random.nextGaussian() * 2);
      variance[j] = (float) (0.05 + random.nextDouble());
    }
    return new Case(Weights.of(rows, cols, w), scaler, means, variance);
  }

  /** The rules of the class comment, one cycle at a time over explicit candidate lists. */
  private static Mask direct(Case c, Mask initial, SparsityTarget target, Dsnot.Settings settings) {
    int rows = c.weights().rows();
    int n = c.weights().cols();
    Mask.Builder out = Mask.builder(rows, n);
    for (int r = 0; r < rows; r++) {
      double[] metric = new double[n];
      double[] wanda = new double[n];
      boolean[] kept = new boolean[n];
      List<Integer> growable = new ArrayList<>();
      List<Integer> prunable = new ArrayList<>();
      double error = 0;
      for (int j = 0; j < n; j++) {
        float w = c.weights().get(r, j);
        metric[j] = w * c.means()[j];
        wanda[j] = Math.abs(w) * Math.sqrt(c.scaler()[j]);
        kept[j] = initial.isKept(r, j);
        if (kept[j]) {
          prunable.add(j);
        } else {
          growable.add(j);
          error += metric[j];
        }
      }
      double sign = Math.signum(error);
      for (int cycle = 0; cycle < settings.maxCycles() && Math.abs(error) > settings.updateThreshold() && !growable.isEmpty(); cycle++) {
        // Grow: the largest metric / var when the error is positive, else the smallest.
        int grown = growable.get(0);
        for (int j : growable) {
          double ratio = metric[j] / Math.pow(c.variance()[j], settings.varPower());
          double best = metric[grown] / Math.pow(c.variance()[grown], settings.varPower());
          grown = (error > 0 ? ratio > best : ratio < best) ? j : grown;
        }
        growable.remove(Integer.valueOf(grown));
        int pruned;
        if (target.isStructured()) {
          pruned = -1;
          int group = grown - grown % target.groupSize();
          for (int j : prunable) {
            if (j >= group && j < group + target.groupSize() && (pruned < 0 || wanda[j] < wanda[pruned])) {
              pruned = j;
            }
          }
          if (pruned < 0) {
            continue;
          }
          if (Math.signum(error + metric[pruned] - metric[grown]) != sign) {
            break;
          }
        } else {
          if (prunable.isEmpty()) {
            break;
          }
          // Error > 0 wants a negative metric pruned, error < 0 a positive one: the least important (lowest Wanda) first.
          boolean wantPositive = error < 0;
          pruned = -1;
          for (int j : prunable) {
            if ((metric[j] > 0) == wantPositive && (pruned < 0 || wanda[j] < wanda[pruned])) {
              pruned = j;
            }
          }
          if (pruned < 0) {
            // None of the wanted sign left: the other sign's most important first (the far end of the order).
            for (int j : prunable) {
              if (pruned < 0 || wanda[j] > wanda[pruned]) {
                pruned = j;
              }
            }
          }
        }
        prunable.remove(Integer.valueOf(pruned));
        kept[pruned] = false;
        kept[grown] = true;
        error += metric[pruned] - metric[grown];
      }
      for (int j = 0; j < n; j++) {
        if (!kept[j]) {
          out.prune(r, j);
        }
      }
    }
    return out.build();
  }

  @Test
  void unstructuredRefinementFollowsTheRulesAndKeepsTheSparsity() {
    for (double sparsity : new double[] {0.5, 0.7}) {
      Case c = randomCase(24, 64, 5);
      SparsityTarget target = SparsityTarget.unstructured(sparsity);
      Mask initial = Wanda.prune("W", c.weights(), c.scaler(), target, Wanda.Group.ROW, CPU, 1).mask();
      PruneResult refined = Dsnot.refine("W", c.weights(), initial, c.scaler(), c.means(), c.variance(), target, Dsnot.DEFAULTS, 2);
      assertThat(refined.mask()).isEqualTo(direct(c, initial, target, Dsnot.DEFAULTS));
      assertThat(refined.mask()).isNotEqualTo(initial);
      for (int r = 0; r < 24; r++) {
        assertThat(refined.mask().keptInRow(r)).isEqualTo(initial.keptInRow(r));
        for (int j = 0; j < 64; j++) {
          assertThat(refined.weights()[r * 64 + j]).isEqualTo(refined.mask().isKept(r, j) ? c.weights().get(r, j) : 0f);
        }
      }
    }
  }

  @Test
  void fewCyclesAndAHighThresholdStopEarly() {
    Case c = randomCase(16, 32, 9);
    SparsityTarget target = SparsityTarget.unstructured(0.5);
    Mask initial = Wanda.prune("W", c.weights(), c.scaler(), target, Wanda.Group.ROW, CPU, 1).mask();
    for (Dsnot.Settings settings : new Dsnot.Settings[] {new Dsnot.Settings(3, 0.1, 1), new Dsnot.Settings(50, 2.0, 2)}) {
      PruneResult refined = Dsnot.refine("W", c.weights(), initial, c.scaler(), c.means(), c.variance(), target, settings, 1);
      assertThat(refined.mask()).isEqualTo(direct(c, initial, target, settings));
    }
    PruneResult none = Dsnot.refine("W", c.weights(), initial, c.scaler(), c.means(), c.variance(), target, new Dsnot.Settings(0, 0.1, 1), 1);
    assertThat(none.mask()).isEqualTo(initial);
  }

  @Test
  void nOfMRefinementStaysInTheGroupsAndFollowsTheRules() {
    for (SparsityTarget target : new SparsityTarget[] {SparsityTarget.nOfM(2, 4), SparsityTarget.nOfM(4, 8)}) {
      Case c = randomCase(20, 48, 13);
      Mask initial = Wanda.prune("W", c.weights(), c.scaler(), target, Wanda.Group.ROW, CPU, 1).mask();
      PruneResult refined = Dsnot.refine("W", c.weights(), initial, c.scaler(), c.means(), c.variance(), target, Dsnot.DEFAULTS, 2);
      assertThat(refined.mask()).isEqualTo(direct(c, initial, target, Dsnot.DEFAULTS));
      assertThat(refined.mask()).isNotEqualTo(initial);
      for (int r = 0; r < 20; r++) {
        for (int g = 0; g < 48; g += target.groupSize()) {
          int kept = 0;
          for (int j = g; j < g + target.groupSize(); j++) {
            kept += refined.mask().isKept(r, j) ? 1 : 0;
          }
          assertThat(kept).isEqualTo(target.groupSize() - target.prunedPerGroup());
        }
      }
    }
  }

  @Test
  void rejectsMismatchedStatistics() {
    Case c = randomCase(4, 8, 1);
    Mask initial = Mask.builder(4, 8).build();
    assertThatThrownBy(() -> Dsnot.refine("L", c.weights(), initial, c.scaler(), new float[7], c.variance(),
        SparsityTarget.unstructured(0.5), Dsnot.DEFAULTS, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot refine layer L with DSnoT: channel means and variances cover 7 and 8 channels but the weight has 8");
    assertThatThrownBy(() -> new Dsnot.Settings(-1, 0.1, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid DSnoT cycles -1: must be >= 0");
  }
}
