package dev.sparkprune.tensorio;

/**
 * Conversions between float and the 16-bit formats, rounding to nearest with ties to even as
 * IEEE 754 and PyTorch do. Java 17 has no Float.floatToFloat16, so both directions are here.
 */
public final class HalfFloats {
  private HalfFloats() {}

  public static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  public static short floatToBf16(float value) {
    int bits = Float.floatToRawIntBits(value);
    if ((bits & 0x7FFFFFFF) > 0x7F800000) {
      // NaN: keep sign and the top payload bits, force quiet so truncation cannot make it Inf.
      return (short) ((bits >>> 16) | 0x0040);
    }
    // Adding 0x7FFF plus the lowest kept bit rounds to nearest, ties to even; overflow carries
    // into the exponent, which is the correct rounding up to the next binade or to infinity.
    int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
    return (short) ((bits + roundingBias) >>> 16);
  }

  public static float f16ToFloat(short bits) {
    int h = bits & 0xFFFF;
    int sign = (h & 0x8000) << 16;
    int exponent = (h >>> 10) & 0x1F;
    int mantissa = h & 0x3FF;
    if (exponent == 0x1F) {
      return Float.intBitsToFloat(sign | 0x7F800000 | (mantissa << 13));
    }
    if (exponent == 0) {
      // Subnormal half: mantissa * 2^-24, exact in float.
      float magnitude = mantissa * 0x1p-24f;
      return sign == 0 ? magnitude : -magnitude;
    }
    return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
  }

  public static short floatToF16(float value) {
    int bits = Float.floatToRawIntBits(value);
    int sign = (bits >>> 16) & 0x8000;
    int magnitude = bits & 0x7FFFFFFF;
    if (magnitude >= 0x7F800000) {
      boolean nan = magnitude > 0x7F800000;
      return (short) (sign | 0x7C00 | (nan ? 0x0200 | ((magnitude >>> 13) & 0x3FF) : 0));
    }
    // Values at or above 65520 round to infinity (65504 is the largest half).
    if (magnitude >= 0x477FF000) {
      return (short) (sign | 0x7C00);
    }
    int exponent = (magnitude >>> 23) - 127;
    if (exponent >= -14) {
      // Normal half: drop 13 mantissa bits with round to nearest even; a carry may bump the exponent.
      int half = ((exponent + 15) << 10) | ((magnitude >>> 13) & 0x3FF);
      int rest = magnitude & 0x1FFF;
      if (rest > 0x1000 || (rest == 0x1000 && (half & 1) != 0)) {
        half++;
      }
      return (short) (sign | half);
    }
    if (exponent < -25) {
      // Below half the smallest subnormal (2^-25): rounds to zero.
      return (short) sign;
    }
    // Subnormal half: value = m * 2^-24 with m = full mantissa >> (shift).
    int fullMantissa = (magnitude & 0x7FFFFF) | 0x800000;
    int shift = -exponent - 1; // 14..24 -> result mantissa = fullMantissa >> shift
    int half = fullMantissa >>> shift;
    int rest = fullMantissa & ((1 << shift) - 1);
    int halfway = 1 << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1) != 0)) {
      half++;
    }
    return (short) (sign | half);
  }
}
