package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.SplittableRandom;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/**
 * Phi-3's longrope against a direct computation of Hugging Face's definition:
 * inv_freq_i = 1 / (ext_i * theta^(2i/d)) with ext the short factors while the sequence fits
 * original_max_position_embeddings and the long factors beyond it, and cos/sin scaled by
 * sqrt(1 + ln(max / original) / ln(original)) unless attention_factor is given.
 */
class TestLongRope {
  private static final double[] SHORT = {1.0, 1.5, 2.0};
  private static final double[] LONG = {3.0, 5.0, 9.0};

  private static ModelConfig config(String extra) {
    return ModelConfig.parse(
        "config.json",
        "{\"model_type\":\"phi3\",\"rope_theta\":500.0,\"max_position_embeddings\":32,\"original_max_position_embeddings\":8,"
            + "\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1.0,1.5,2.0],\"long_factor\":[3.0,5.0,9.0]" + extra + "}}");
  }

  /** Rotates a random [length x heads*headDim] batch and compares every value with the direct formula. */
  private static void check(ModelConfig config, int length, double[] factors, double magnitude) {
    int headDim = 10;
    int rotaryDim = 6;
    int heads = 2;
    Rope rope = new Rope(config, headDim, rotaryDim, 32);
    float[] x = new float[length * heads * headDim];
    SplittableRandom random = new SplittableRandom(length);
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (random.nextDouble() * 2 - 1);
    }
    float[] rotated = x.clone();
    rope.apply(rotated, 1, length, heads);
    int half = rotaryDim / 2;
    for (int p = 0; p < length; p++) {
      for (int h = 0; h < heads; h++) {
        int head = (p * heads + h) * headDim;
        for (int i = 0; i < half; i++) {
          double angle = p / (factors[i] * Math.pow(500.0, 2.0 * i / rotaryDim));
          double cos = Math.cos(angle) * magnitude;
          double sin = Math.sin(angle) * magnitude;
          double x1 = x[head + i];
          double x2 = x[head + i + half];
          assertThat((double) rotated[head + i]).as("p %d i %d", p, i).isCloseTo(x1 * cos - x2 * sin, Offset.offset(2e-6));
          assertThat((double) rotated[head + i + half]).as("p %d i %d", p, i).isCloseTo(x2 * cos + x1 * sin, Offset.offset(2e-6));
        }
        for (int d = rotaryDim; d < headDim; d++) {
          assertThat(rotated[head + d]).isEqualTo(x[head + d]);
        }
      }
    }
  }

  @Test
  void shortFactorsUpToTheOriginalLengthLongFactorsBeyond() {
    double magnitude = Math.sqrt(1 + Math.log(32.0 / 8) / Math.log(8));
    check(config(""), 8, SHORT, magnitude);
    check(config(""), 9, LONG, magnitude);
    check(config(""), 32, LONG, magnitude);
  }

  @Test
  void anExplicitAttentionFactorWins() {
    check(config(",\"attention_factor\":0.75"), 5, SHORT, 0.75);
    check(config(",\"attention_factor\":0.75"), 20, LONG, 0.75);
  }

  @Test
  void withoutOriginalMaxPositionsTheFactorKeyDecides() {
    ModelConfig config = ModelConfig.parse(
        "config.json",
        "{\"model_type\":\"llama\",\"rope_theta\":500.0,\"max_position_embeddings\":16,"
            + "\"rope_scaling\":{\"rope_type\":\"longrope\",\"factor\":4.0,\"short_factor\":[1.0,1.5,2.0],\"long_factor\":[3.0,5.0,9.0]}}");
    double magnitude = Math.sqrt(1 + Math.log(4.0) / Math.log(16));
    check(config, 16, SHORT, magnitude);
  }

  @Test
  void factorListsMustMatchHalfTheRotaryDimensions() {
    ModelConfig config = ModelConfig.parse(
        "config.json",
        "{\"model_type\":\"phi3\",\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1.0,1.5],\"long_factor\":[3.0,5.0,9.0]}}");
    assertThatThrownBy(() -> new Rope(config, 10, 6, 32))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid model config config.json: rope_scaling.short_factor must be a list of 3 numbers (rotary dimensions / 2), found [1.0,1.5]");
  }
}
