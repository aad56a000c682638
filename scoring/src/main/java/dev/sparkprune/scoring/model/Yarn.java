package dev.sparkprune.scoring.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.tensorio.archive.ModelConfig;

/**
 * YaRN rope scaling as transformers computes it (modeling_rope_utils' _compute_yarn_parameters):
 * each rotary frequency blends its extrapolated value (unchanged) and its interpolated value
 * (divided by factor) along a linear ramp between the dimensions that turn beta_fast and
 * beta_slow times over the original context; cos and sin are scaled by an attention factor.
 */
final class Yarn {
  private Yarn() {}

  /** The inverse frequencies of {@code rotaryDim} rotated dimensions, [rotaryDim / 2]. */
  static double[] frequencies(ModelConfig config, JsonNode scaling, double theta, int rotaryDim) {
    double factor = factor(config, scaling);
    double original = original(config, scaling);
    // transformers reads beta_fast / beta_slow with `or`: absent, null or 0 give the defaults.
    double fast = positiveOr(scaling.get("beta_fast"), 32);
    double slow = positiveOr(scaling.get("beta_slow"), 1);
    double low = correctionDimension(fast, rotaryDim, theta, original);
    double high = correctionDimension(slow, rotaryDim, theta, original);
    if (scaling.path("truncate").asBoolean(true)) {
      low = Math.floor(low);
      high = Math.ceil(high);
    }
    low = Math.max(low, 0);
    high = Math.min(high, rotaryDim - 1);
    if (low == high) {
      high += 0.001; // transformers' guard against a zero-width ramp
    }
    double[] inverse = new double[rotaryDim / 2];
    for (int i = 0; i < inverse.length; i++) {
      double position = Math.pow(theta, (2.0 * i) / rotaryDim);
      double ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
      double extrapolation = 1 - ramp;
      inverse[i] = (1 / (factor * position)) * (1 - extrapolation) + (1 / position) * extrapolation;
    }
    return inverse;
  }

  /**
   * The factor on cos and sin: rope_scaling.attention_factor, else mscale(factor, mscale) /
   * mscale(factor, mscale_all_dim) when both are set (DeepSeek), else mscale(factor, 1).
   */
  static double attentionFactor(ModelConfig config, JsonNode scaling) {
    JsonNode given = scaling.get("attention_factor");
    if (given != null && !given.isNull()) {
      return given.asDouble();
    }
    double factor = factor(config, scaling);
    double mscale = scaling.path("mscale").asDouble(0);
    double allDim = scaling.path("mscale_all_dim").asDouble(0);
    return mscale != 0 && allDim != 0 ? mscale(factor, mscale) / mscale(factor, allDim) : mscale(factor, 1);
  }

  /** yarn's magnitude correction 0.1 m ln(s) + 1, 1 for s <= 1. */
  static double mscale(double scale, double m) {
    return scale <= 1 ? 1.0 : 0.1 * m * Math.log(scale) + 1.0;
  }

  /** The rotary dimension that turns {@code rotations} times over {@code original} positions. */
  private static double correctionDimension(double rotations, int dim, double theta, double original) {
    return dim * Math.log(original / (rotations * 2 * Math.PI)) / (2 * Math.log(theta));
  }

  private static double factor(ModelConfig config, JsonNode scaling) {
    JsonNode factor = scaling.get("factor");
    return factor != null && !factor.isNull() ? factor.asDouble() : config.requireInt("max_position_embeddings") / original(config, scaling);
  }

  /** The pretraining context: rope_scaling's, else max_position_embeddings (transformers' fallback). */
  private static double original(ModelConfig config, JsonNode scaling) {
    JsonNode original = scaling.get("original_max_position_embeddings");
    return original != null && !original.isNull() ? original.asDouble() : config.requireInt("max_position_embeddings");
  }

  private static double positiveOr(JsonNode node, double fallback) {
    return node == null || node.isNull() || node.asDouble() == 0 ? fallback : node.asDouble();
  }
}
