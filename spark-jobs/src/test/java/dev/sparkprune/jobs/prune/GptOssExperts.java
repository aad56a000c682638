package dev.sparkprune.jobs.prune;

import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.arch.Linear;
import java.io.ByteArrayOutputStream;
import java.io.IOException;

/**
 * gpt-oss expert linears read straight from an archive's bytes, decoded here rather than by
 * tensor-io: BF16 fused tensors [experts, in, width] (the upper 16 bits of a float32), MXFP4
 * {@code _blocks} [experts, width, in / 32, 16] (two E2M1 codes per byte, low nibble first) and
 * {@code _scales} [experts, width, in / 32] (E8M0: 2^(s - 127)). As transformers' GptOssExperts
 * reads them: gate is the even columns of gate_up_proj[e], up the odd ones, down is down_proj[e];
 * a linear's output row o is column (MXFP4: stored row) 2o, 2o + 1 or o.
 */
final class GptOssExperts {
  /** OCP E2M1 magnitudes by the low three bits; bit 3 is the sign. */
  private static final float[] E2M1 = {0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f};

  private GptOssExperts() {}

  /** The linear's weights [out x in]: its own tensor, or its slice of a fused expert tensor. */
  static float[] outByIn(SafetensorsReader reader, Linear linear) throws IOException {
    if (linear.fusedSlice().isEmpty()) {
      return reader.readFloats(linear.tensorName());
    }
    int out = (int) linear.outFeatures();
    int in = (int) linear.inFeatures();
    float[] values = new float[out * in];
    String fused = fused(linear);
    if (reader.contains(fused)) {
      byte[] bytes = raw(reader, fused);
      int width = width(linear);
      int base = expert(linear) * in * width;
      for (int o = 0; o < out; o++) {
        for (int i = 0; i < in; i++) {
          int at = 2 * (base + i * width + column(linear, o));
          values[o * in + i] = Float.intBitsToFloat(((bytes[at] & 0xFF) | (bytes[at + 1] & 0xFF) << 8) << 16);
        }
      }
      return values;
    }
    int[] codes = codes(reader, linear);
    int[] scales = scales(reader, linear);
    for (int o = 0; o < out; o++) {
      for (int i = 0; i < in; i++) {
        int code = codes[o * in + i];
        float magnitude = E2M1[code & 7] * (float) Math.pow(2, scales[o * (in / 32) + i / 32] - 127);
        values[o * in + i] = (code & 8) != 0 ? -magnitude : magnitude;
      }
    }
    return values;
  }

  /** An MXFP4 linear's E2M1 codes [out x in]. */
  static int[] codes(SafetensorsReader reader, Linear linear) throws IOException {
    int out = (int) linear.outFeatures();
    int in = (int) linear.inFeatures();
    byte[] blocks = raw(reader, fused(linear) + "_blocks");
    int rowBytes = in / 2;
    int base = expert(linear) * width(linear) * rowBytes;
    int[] codes = new int[out * in];
    for (int o = 0; o < out; o++) {
      for (int i = 0; i < in; i++) {
        int pair = blocks[base + column(linear, o) * rowBytes + i / 2] & 0xFF;
        codes[o * in + i] = (i % 2 == 0 ? pair : pair >>> 4) & 0x0F;
      }
    }
    return codes;
  }

  /** An MXFP4 linear's E8M0 scale codes [out x in / 32]. */
  static int[] scales(SafetensorsReader reader, Linear linear) throws IOException {
    int out = (int) linear.outFeatures();
    int groups = (int) linear.inFeatures() / 32;
    byte[] scales = raw(reader, fused(linear) + "_scales");
    int base = expert(linear) * width(linear) * groups;
    int[] codes = new int[out * groups];
    for (int o = 0; o < out; o++) {
      for (int g = 0; g < groups; g++) {
        codes[o * groups + g] = scales[base + column(linear, o) * groups + g] & 0xFF;
      }
    }
    return codes;
  }

  /** E2M1 magnitude of a code. */
  static float magnitude(int code) {
    return E2M1[code & 7];
  }

  private static String fused(Linear linear) {
    return "model.layers." + linear.block() + ".mlp.experts." + (linear.name().endsWith("down_proj") ? "down_proj" : "gate_up_proj");
  }

  private static int expert(Linear linear) {
    return linear.expert().orElseThrow().index();
  }

  private static int width(Linear linear) {
    return linear.name().endsWith("down_proj") ? (int) linear.outFeatures() : 2 * (int) linear.outFeatures();
  }

  private static int column(Linear linear, int row) {
    if (linear.name().endsWith("gate_proj")) {
      return 2 * row;
    }
    return linear.name().endsWith("up_proj") ? 2 * row + 1 : row;
  }

  private static byte[] raw(SafetensorsReader reader, String name) throws IOException {
    TensorInfo tensor = reader.tensor(name);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    reader.copyRaw(tensor, bytes);
    return bytes.toByteArray();
  }
}
