package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;

/**
 * Rotary position embeddings in Hugging Face's rotate-half convention: within each head the
 * first and second halves of the rotated dimensions form the (x1, x2) pairs, and
 * x' = x * cos + rotate_half(x) * sin with rotate_half(x) = (-x2, x1). Only the first
 * {@code rotaryDim} dimensions of a head rotate (GPT-NeoX's rotary_pct); rope_scaling "linear"
 * and "llama3" adjust the inverse frequencies.
 */
final class Rope {
  private final int headDim;
  private final int rotaryDim;
  private final float[] cos;
  private final float[] sin;
  private final int maxPositions;

  Rope(ModelConfig config, int headDim, int rotaryDim, int maxPositions) {
    this.headDim = headDim;
    this.rotaryDim = rotaryDim;
    this.maxPositions = maxPositions;
    double theta = config.doubleValue("rope_theta", config.doubleValue("rotary_emb_base", 10000.0));
    int half = rotaryDim / 2;
    double[] inverseFrequency = new double[half];
    for (int i = 0; i < half; i++) {
      inverseFrequency[i] = 1.0 / Math.pow(theta, (2.0 * i) / rotaryDim);
    }
    scale(config, inverseFrequency);
    cos = new float[maxPositions * half];
    sin = new float[maxPositions * half];
    for (int p = 0; p < maxPositions; p++) {
      for (int i = 0; i < half; i++) {
        double angle = p * inverseFrequency[i];
        cos[p * half + i] = (float) Math.cos(angle);
        sin[p * half + i] = (float) Math.sin(angle);
      }
    }
  }

  private static void scale(ModelConfig config, double[] inverseFrequency) {
    var scaling = config.json().get("rope_scaling");
    if (scaling == null || scaling.isNull()) {
      return;
    }
    String type = scaling.path("rope_type").asText(scaling.path("type").asText(""));
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
    for (int s = 0; s < sequences; s++) {
      for (int p = 0; p < length; p++) {
        int row = (s * length + p) * width;
        for (int h = 0; h < heads; h++) {
          int head = row + h * headDim;
          for (int i = 0; i < half; i++) {
            float x1 = x[head + i];
            float x2 = x[head + i + half];
            float c = cos[p * half + i];
            float sn = sin[p * half + i];
            x[head + i] = x1 * c - x2 * sn;
            x[head + i + half] = x2 * c + x1 * sn;
          }
        }
      }
    }
  }
}
