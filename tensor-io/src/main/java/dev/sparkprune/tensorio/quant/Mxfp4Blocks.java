package dev.sparkprune.tensorio.quant;

import dev.sparkprune.tensorio.MiniFloats;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;

/**
 * MXFP4 experts as gpt-oss ships them: per expert, {@code *_blocks} U8 [out, in / 32, 16] (two
 * E2M1 codes per byte, the low nibble first) and {@code *_scales} U8 [out, in / 32] (one E8M0
 * exponent per 32 consecutive input values); value = E2M1(code) x 2^(scale - 127), exact in
 * float. transformers' dequantized layout of the same tensor is [in, out] per expert.
 */
public final class Mxfp4Blocks {
  public static final int GROUP = Quantization.MX_BLOCK;
  /** Bytes of codes per group: 32 values, two per byte. */
  public static final int GROUP_BYTES = GROUP / 2;
  /** emax of E2M1 (6 = 1.5 x 2^2): the OCP MX shared exponent is floor(log2(amax)) - 2. */
  private static final int E2M1_EMAX = 2;

  private Mxfp4Blocks() {}

  /** One expert's values in transformers' dequantized [in][out] order (the BF16 gpt-oss layout). */
  public static void decodeInByOut(byte[] blocks, int blocksOffset, byte[] scales, int scalesOffset, int out, int in, float[] destination, int offset) {
    int groups = in / GROUP;
    for (int o = 0; o < out; o++) {
      for (int g = 0; g < groups; g++) {
        float scale = MiniFloats.e8m0(scales[scalesOffset + o * groups + g]);
        int source = blocksOffset + (o * groups + g) * GROUP_BYTES;
        for (int b = 0; b < GROUP_BYTES; b++) {
          int pair = blocks[source + b];
          int i = g * GROUP + 2 * b;
          destination[offset + i * out + o] = MiniFloats.e2m1(pair) * scale;
          destination[offset + (i + 1) * out + o] = MiniFloats.e2m1(pair >>> 4) * scale;
        }
      }
    }
  }

  /**
   * A re-quantized expert: blocks [out x in/2] bytes, scales [out x in/32], the error against the
   * floats, and how many 32-value groups were quantized anew (the others kept).
   */
  public record Quantized(byte[] blocks, byte[] scales, QuantizationError error, int requantizedGroups) {}

  /**
   * Quantizes one expert's [out x in] floats with the OCP MX rule: per 32 values, shared
   * exponent X = floor(log2(amax)) - 2 clamped to [-127, 127] (an all-zero group gets 2^-127),
   * codes = E2M1(w / 2^X) rounded to nearest even and saturated at ±6. Zeros stay exactly zero.
   */
  public static Quantized quantizeOutByIn(String tensor, float[] values, int out, int in) {
    return updateOutByIn(tensor, values, out, in, null, null);
  }

  /**
   * Re-quantizes one expert's updated [out x in] floats against its stored blocks and scales: a
   * group whose every value is its source value or zero keeps its exponent and codes, the zero
   * nibble where pruned (exact); any other group is quantized anew as by {@link #quantizeOutByIn}.
   */
  public static Quantized updateOutByIn(String tensor, float[] values, int out, int in, byte[] sourceBlocks, byte[] sourceScales) {
    checkShape(tensor, values.length, out, in);
    int groups = in / GROUP;
    byte[] blocks = new byte[out * in / 2];
    byte[] scales = new byte[out * groups];
    QuantizationError.Accumulator error = new QuantizationError.Accumulator();
    int requantized = 0;
    for (int o = 0; o < out; o++) {
      for (int g = 0; g < groups; g++) {
        int start = o * in + g * GROUP;
        int group = o * groups + g;
        int target = group * GROUP_BYTES;
        if (sourceBlocks != null && onlyPruned(values, start, sourceBlocks, target, sourceScales[group])) {
          scales[group] = sourceScales[group];
          for (int i = 0; i < GROUP; i++) {
            int code = (sourceBlocks[target + i / 2] >>> (4 * (i & 1))) & 0x0F;
            // A pruned value gets the zero nibble; a stored zero (either sign) stays as it was.
            if (values[start + i] == 0 && MiniFloats.e2m1(code) != 0) {
              code = 0;
            }
            blocks[target + i / 2] |= (byte) (code << (4 * (i & 1)));
            error.add(values[start + i], values[start + i]);
          }
          continue;
        }
        requantized++;
        float amax = 0;
        for (int i = 0; i < GROUP; i++) {
          Fp8Blocks.checkFinite(tensor, values[start + i], o, g * GROUP + i);
          amax = Math.max(amax, Math.abs(values[start + i]));
        }
        int exponent = amax == 0 ? -MiniFloats.E8M0_BIAS : Math.getExponent((double) amax) - E2M1_EMAX;
        int scaleCode = MiniFloats.encodeE8m0(exponent);
        exponent = scaleCode - MiniFloats.E8M0_BIAS;
        scales[group] = (byte) scaleCode;
        for (int i = 0; i < GROUP; i++) {
          float value = values[start + i];
          int code = MiniFloats.encodeE2m1(Math.scalb((double) value, -exponent));
          blocks[target + i / 2] |= (byte) (code << (4 * (i & 1)));
          error.add(value, Math.scalb(MiniFloats.e2m1(code), exponent));
        }
      }
    }
    return new Quantized(blocks, scales, error.result(), requantized);
  }

  /** Whether every value of a group is its source value (code x 2^(scale - 127)) or zero. */
  private static boolean onlyPruned(float[] values, int start, byte[] sourceBlocks, int sourceStart, byte sourceScale) {
    float scale = MiniFloats.e8m0(sourceScale);
    for (int i = 0; i < GROUP; i++) {
      float value = values[start + i];
      int code = sourceBlocks[sourceStart + i / 2] >>> (4 * (i & 1));
      if (value != 0 && Float.floatToRawIntBits(value) != Float.floatToRawIntBits(MiniFloats.e2m1(code) * scale)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Sets the codes of pruned values of one expert to the zero nibble; kept nibbles and the scales
   * are untouched. {@code blocks} holds that expert's [out x in/2] bytes; the mask is [out x in],
   * 1 = kept.
   */
  public static void mask(byte[] blocks, int blocksOffset, int out, int in, Mask mask) {
    ValidationException.check(
        mask.rows() == out && mask.cols() == in, "Cannot mask an MXFP4 expert [%d, %d] with a [%d, %d] mask", out, in, mask.rows(), mask.cols());
    for (int o = 0; o < out; o++) {
      for (int i = 0; i < in; i++) {
        if (!mask.isKept(o, i)) {
          int index = blocksOffset + (o * in + i) / 2;
          blocks[index] &= (byte) ((i & 1) == 0 ? 0xF0 : 0x0F);
        }
      }
    }
  }

  private static void checkShape(String tensor, int values, int out, int in) {
    ValidationException.check(
        in % GROUP == 0, "Cannot quantize %s to MXFP4: %d input values per row is not a multiple of %d", tensor, in, GROUP);
    ValidationException.check(
        values == (long) out * in, "Cannot quantize %s: %d values for an expert of [%d, %d]", tensor, values, out, in);
  }
}
