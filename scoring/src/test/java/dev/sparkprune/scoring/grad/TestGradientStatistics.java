package dev.sparkprune.scoring.grad;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.ValidationException;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TestGradientStatistics {
  private static float[][] samples(int count, int size, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[][] samples = new float[count][size];
    for (float[] sample : samples) {
      for (int i = 0; i < size; i++) {
        sample[i] = (float) random.nextGaussian() * 1e-3f;
      }
    }
    return samples;
  }

  @Test
  void sumsFollowTheAuthorsDefinitions() {
    float[][] samples = samples(5, 6, 1);
    GradientStatistics statistics = GradientStatistics.create(2, 3);
    for (float[] sample : samples) {
      statistics.add(sample);
    }
    float[] l2 = statistics.l2();
    float[] l1 = statistics.l1();
    double[] mean = statistics.meanGradient();
    for (int i = 0; i < 6; i++) {
      double squares = 0;
      double absolutes = 0;
      double sum = 0;
      for (float[] sample : samples) {
        squares += Math.pow(100.0 * sample[i], 2);
        absolutes += Math.abs(100.0 * sample[i]);
        sum += sample[i];
      }
      assertThat(l2[i]).isEqualTo((float) Math.sqrt(squares));
      assertThat(l1[i]).isEqualTo((float) absolutes);
      assertThat(mean[i]).isCloseTo(sum / 5, org.assertj.core.data.Offset.offset(1e-18));
    }
    assertThat(statistics.samples()).isEqualTo(5);
  }

  @Test
  void partialsAddAndRoundTripThroughBytes() {
    float[][] samples = samples(4, 12, 2);
    GradientStatistics left = GradientStatistics.create(3, 4);
    GradientStatistics right = GradientStatistics.create(3, 4);
    GradientStatistics all = GradientStatistics.create(3, 4);
    for (int s = 0; s < 4; s++) {
      (s < 2 ? left : right).add(samples[s]);
      all.add(samples[s]);
    }
    GradientStatistics sum = left.plus(right);
    assertThat(sum.samples()).isEqualTo(4);
    assertThat(sum.l2()).containsExactly(all.l2(), org.assertj.core.data.Offset.offset(1e-6f));
    GradientStatistics copy = GradientStatistics.fromBytes("mem", sum.toBytes());
    assertThat(copy.l2()).isEqualTo(sum.l2());
    assertThat(copy.l1()).isEqualTo(sum.l1());
    assertThat(copy.meanGradient()).isEqualTo(sum.meanGradient());
    assertThat(copy.samples()).isEqualTo(4);
  }

  @Test
  void badInputFailsWithOneLine() {
    GradientStatistics statistics = GradientStatistics.create(2, 2);
    assertThatThrownBy(statistics::l2).isInstanceOf(ValidationException.class)
        .hasMessage("Cannot use gradient statistics: no calibration samples were added");
    assertThatThrownBy(() -> statistics.add(new float[3])).isInstanceOf(ValidationException.class)
        .hasMessage("Cannot add a gradient of 3 values to statistics of [2, 2]");
    assertThatThrownBy(() -> statistics.plus(GradientStatistics.create(1, 4))).isInstanceOf(ValidationException.class)
        .hasMessage("Cannot add gradient statistics of [1, 4] to [2, 2]");
    byte[] bytes = statistics.toBytes();
    String text = new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1).replace("sparkprune-gradients", "sparkprune-gradientz");
    assertThatThrownBy(() -> GradientStatistics.fromBytes("x.safetensors", text.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1)))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid gradient statistics file x.safetensors: not sparkprune gradients version 1 (format sparkprune-gradientz, version 1)");
  }
}
