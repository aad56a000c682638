package dev.sparkprune.scoring.allocation;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.Fixture;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.Weights;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TestAllocation {

  @Test
  void lampScoresOnTheFixturesEqualADirectComputation() {
    for (String name : Fixture.NAMES) {
      float[] w = Fixture.load(name).floats("W");
      float[] scores = Lamp.scores(w);
      Integer[] order = new Integer[w.length];
      for (int i = 0; i < w.length; i++) {
        order[i] = i;
      }
      Arrays.sort(order, (a, b) -> {
        int byValue = Float.compare(w[a] * w[a], w[b] * w[b]);
        return byValue != 0 ? byValue : Integer.compare(a, b);
      });
      for (int k = 0; k < w.length; k += 97) {
        double suffix = 0;
        for (int j = k; j < w.length; j++) {
          suffix += (double) w[order[j]] * w[order[j]];
        }
        double expected = (double) w[order[k]] * w[order[k]] / suffix;
        assertThat((double) scores[order[k]]).as("%s rank %d", name, k).isCloseTo(expected, org.assertj.core.data.Percentage.withPercentage(1e-4));
      }
      // The largest weight of a layer always scores 1.
      assertThat(scores[order[w.length - 1]]).isEqualTo(1f);
    }
  }

  private static List<float[]> randomLayers(long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    List<float[]> layers = new ArrayList<>();
    for (int l = 0; l < 7; l++) {
      float[] scores = new float[200 + random.nextInt(900)];
      double scale = Math.pow(10, random.nextInt(-3, 3));
      for (int i = 0; i < scores.length; i++) {
        // Quantized so that exact ties occur.
        scores[i] = (float) (Math.round(random.nextDouble() * 500) * scale / 500);
      }
      layers.add(scores);
    }
    return layers;
  }

  /** The smallest score t with sum_l min(count_l(<= t), cap_l) >= target, by brute force. */
  private static float bruteForce(List<float[]> layers, long[] caps, long target) {
    List<Float> all = new ArrayList<>();
    layers.forEach(scores -> {
      for (float score : scores) {
        all.add(score);
      }
    });
    all.sort(null);
    for (float t : all) {
      long pruned = 0;
      for (int l = 0; l < layers.size(); l++) {
        long count = 0;
        for (float score : layers.get(l)) {
          count += score <= t ? 1 : 0;
        }
        pruned += Math.min(count, caps[l]);
      }
      if (pruned >= target) {
        return t;
      }
    }
    return all.get(all.size() - 1);
  }

  @Test
  void twoRoundThresholdEqualsABruteForceSortWithAndWithoutMinKeep() {
    for (long seed = 0; seed < 5; seed++) {
      List<float[]> layers = randomLayers(seed);
      long total = layers.stream().mapToLong(scores -> scores.length).sum();
      for (double minKeep : new double[] {0.0, 0.3}) {
        long[] caps = new long[layers.size()];
        for (int l = 0; l < caps.length; l++) {
          caps[l] = layers.get(l).length - (long) Math.ceil(minKeep * layers.get(l).length);
        }
        long target = (long) (total * 0.6);
        List<ScoreHistogram> coarse = new ArrayList<>();
        layers.forEach(scores -> coarse.add(ScoreHistogram.coarse(scores)));
        int boundary = GlobalThreshold.boundaryBucket(coarse, caps, target);
        long[] below = new long[layers.size()];
        List<ScoreHistogram> fine = new ArrayList<>();
        for (int l = 0; l < layers.size(); l++) {
          below[l] = coarse.get(l).countAtOrBelow(boundary - 1);
          fine.add(ScoreHistogram.fine(layers.get(l), boundary));
        }
        float threshold = GlobalThreshold.value(GlobalThreshold.thresholdKey(boundary, fine, below, caps, target));
        assertThat(threshold).as("seed %d min-keep %s", seed, minKeep).isEqualTo(bruteForce(layers, caps, target));

        long pruned = 0;
        for (int l = 0; l < layers.size(); l++) {
          float[] scores = layers.get(l);
          PruneResult result = ThresholdMask.prune(Weights.of(1, scores.length, scores), scores, GlobalThreshold.thresholdKeyOf(threshold), caps[l]);
          long layerPruned = result.mask().prunedCount();
          assertThat(layerPruned).isLessThanOrEqualTo(caps[l]);
          assertThat((double) result.mask().keptCount()).isGreaterThanOrEqualTo(minKeep * scores.length - 1e-9);
          pruned += layerPruned;
        }
        // Reaches the target; overshoots only by scores tied with the threshold.
        assertThat(pruned).isGreaterThanOrEqualTo(target);
        long ties = layers.stream().mapToLong(scores -> Arrays.stream(toDoubles(scores)).filter(s -> (float) s == threshold).count()).sum();
        assertThat(pruned - target).isLessThanOrEqualTo(ties);
      }
    }
  }

  private static double[] toDoubles(float[] values) {
    double[] out = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = values[i];
    }
    return out;
  }
}
