package dev.sparkprune.scoring.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;

/**
 * Rotary position embeddings in Hugging Face's rotate-half convention: within each head the
 * first and second halves of the rotated dimensions form the (x1, x2) pairs, and
 * x' = x * cos + rotate_half(x) * sin with rotate_half(x) = (-x2, x1). Only the first
 * {@code rotaryDim} dimensions of a head rotate (GPT-NeoX's rotary_pct, Phi-3's
 * partial_rotary_factor); rope_scaling "linear" and "llama3" adjust the inverse frequencies;
 * "longrope" (Phi-3) divides them by short or long factors chosen by sequence length and scales
 * cos and sin by an attention factor.
 */
final class Rope {
  final int headDim;
  final int rotaryDim;
  private final int maxPositions;
  private final double[] frequencies;
  /** longrope's long-factor frequencies, used for sequences longer than {@link #longFrom}. */
  private final double[] longFrequencies;
  private final int longFrom;
  private final double magnitude;
  /**
   * cos and sin tables [positions x half], built as far as the longest sequence seen so far
   * (never for all max_position_embeddings up front: 131k positions of a 256-wide head are 134 MB).
   */
  private float[][] tables = new float[4][0];
  private int tabled;

  Rope(ModelConfig config, int headDim, int rotaryDim, int maxPositions) {
    this(config, config.doubleValue("rope_theta", config.doubleValue("rotary_emb_base", 10000.0)), true, headDim, rotaryDim, maxPositions);
  }

  /**
   * Rope with base {@code theta}; with {@code scaled} false rope_scaling is ignored (Gemma-3's
   * local layers rotate with rope_local_base_freq and no scaling).
   */
  Rope(ModelConfig config, double theta, boolean scaled, int headDim, int rotaryDim, int maxPositions) {
    this.headDim = headDim;
    this.rotaryDim = rotaryDim;
    this.maxPositions = maxPositions;
    JsonNode scaling = scaled ? config.json().get("rope_scaling") : null;
    double[] inverseFrequency = baseFrequencies(theta, rotaryDim);
    if (scaling == null || scaling.isNull() || !type(scaling).equals("longrope")) {
      scale(config, scaling, inverseFrequency);
      this.frequencies = inverseFrequency;
      this.longFrequencies = inverseFrequency;
      this.longFrom = Integer.MAX_VALUE;
      this.magnitude = 1.0;
      return;
    }
    // Hugging Face's longrope: with original_max_position_embeddings in the config (Phi-3) the
    // extension ratio is max / original, else rope_scaling.factor; short factors up to the
    // original length, long factors beyond.
    int configuredMax = config.optionalInt("max_position_embeddings").orElse(maxPositions);
    int original = config.optionalInt("original_max_position_embeddings").orElse(configuredMax);
    double factor = config.optionalInt("original_max_position_embeddings").isPresent()
        ? (double) configuredMax / original
        : scaling.path("factor").asDouble(1.0);
    this.magnitude = scaling.hasNonNull("attention_factor")
        ? scaling.get("attention_factor").asDouble()
        : factor <= 1.0 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
    this.frequencies = divide(inverseFrequency, factors(config, scaling, "short_factor", rotaryDim / 2));
    this.longFrequencies = divide(inverseFrequency, factors(config, scaling, "long_factor", rotaryDim / 2));
    this.longFrom = original;
  }

  /** {cos, sin, long cos, long sin} covering at least {@code length} positions. */
  private synchronized float[][] tables(int length) {
    if (length > tabled) {
      int positions = (int) Math.min(maxPositions, Math.max(length, 2L * tabled));
      float[][] grown = new float[4][];
      float[][] base = table(frequencies, magnitude, positions);
      float[][] extended = longFrequencies == frequencies ? base : table(longFrequencies, magnitude, positions);
      grown[0] = base[0];
      grown[1] = base[1];
      grown[2] = extended[0];
      grown[3] = extended[1];
      tables = grown;
      tabled = positions;
    }
    return tables;
  }

  /** rope_scaling's type: {@code rope_type}, or the older {@code type}. */
  static String type(JsonNode scaling) {
    return scaling.path("rope_type").asText(scaling.path("type").asText(""));
  }

  private static double[] baseFrequencies(double theta, int rotaryDim) {
    double[] inverseFrequency = new double[rotaryDim / 2];
    for (int i = 0; i < inverseFrequency.length; i++) {
      inverseFrequency[i] = 1.0 / Math.pow(theta, (2.0 * i) / rotaryDim);
    }
    return inverseFrequency;
  }

  private static double[] factors(ModelConfig config, JsonNode scaling, String key, int count) {
    JsonNode node = scaling.get(key);
    ValidationException.check(
        node != null && node.isArray() && node.size() == count,
        "Invalid model config %s: rope_scaling.%s must be a list of %d numbers (rotary dimensions / 2), found %s",
        config.location(),
        key,
        count,
        node);
    double[] values = new double[count];
    for (int i = 0; i < count; i++) {
      ValidationException.check(
          node.get(i).isNumber() && node.get(i).doubleValue() > 0,
          "Invalid model config %s: rope_scaling.%s[%d] must be a positive number, found %s",
          config.location(),
          key,
          i,
          node.get(i));
      values[i] = node.get(i).doubleValue();
    }
    return values;
  }

  private static double[] divide(double[] values, double[] by) {
    double[] out = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = values[i] / by[i];
    }
    return out;
  }

  /** cos and sin of p * inverseFrequency[i], times {@code magnitude}: [positions x half] each. */
  private static float[][] table(double[] inverseFrequency, double magnitude, int positions) {
    int half = inverseFrequency.length;
    float[] cos = new float[positions * half];
    float[] sin = new float[positions * half];
    for (int p = 0; p < positions; p++) {
      for (int i = 0; i < half; i++) {
        double angle = p * inverseFrequency[i];
        cos[p * half + i] = (float) (Math.cos(angle) * magnitude);
        sin[p * half + i] = (float) (Math.sin(angle) * magnitude);
      }
    }
    return new float[][] {cos, sin};
  }

  private static void scale(ModelConfig config, JsonNode scaling, double[] inverseFrequency) {
    if (scaling == null || scaling.isNull()) {
      return;
    }
    String type = type(scaling);
    double factor = scaling.path("factor").asDouble(1.0);
    switch (type) {
      case "default":
        return;
      case "linear":
        for (int i = 0; i < inverseFrequency.length; i++) {
          inverseFrequency[i] /= factor;
        }
        return;
      case "llama3": {
        double low = scaling.path("low_freq_factor").asDouble(1.0);
        double high = scaling.path("high_freq_factor").asDouble(4.0);
        double original = scaling.path("original_max_position_embeddings").asDouble(8192);
        double lowWavelength = original / low;
        double highWavelength = original / high;
        for (int i = 0; i < inverseFrequency.length; i++) {
          double wavelength = 2 * Math.PI / inverseFrequency[i];
          if (wavelength > lowWavelength) {
            inverseFrequency[i] /= factor;
          } else if (wavelength >= highWavelength) {
            double smooth = (original / wavelength - low) / (high - low);
            inverseFrequency[i] = (1 - smooth) * inverseFrequency[i] / factor + smooth * inverseFrequency[i];
          }
        }
        return;
      }
      default:
        throw new ValidationException("Unsupported rope_scaling type '" + type + "' in " + config.location());
    }
  }

  /** Rotates every head of x [sequences*length x heads*headDim] in place; position = index in sequence. */
  void apply(float[] x, int sequences, int length, int heads) {
    ValidationException.check(length <= maxPositions, "Sequence length %d exceeds the rotary table (%d positions)", length, maxPositions);
    int half = rotaryDim / 2;
    int width = heads * headDim;
    // Hugging Face picks longrope's table by the batch's largest position + 1, the sequence length.
    float[][] table = tables(length);
    float[] cosines = length > longFrom ? table[2] : table[0];
    float[] sines = length > longFrom ? table[3] : table[1];
    for (int s = 0; s < sequences; s++) {
      for (int p = 0; p < length; p++) {
        int row = (s * length + p) * width;
        for (int h = 0; h < heads; h++) {
          int head = row + h * headDim;
          for (int i = 0; i < half; i++) {
            float x1 = x[head + i];
            float x2 = x[head + i + half];
            float c = cosines[p * half + i];
            float sn = sines[p * half + i];
            x[head + i] = x1 * c - x2 * sn;
            x[head + i + half] = x2 * c + x1 * sn;
          }
        }
      }
    }
  }
}
