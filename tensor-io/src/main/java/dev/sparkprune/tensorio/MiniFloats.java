package dev.sparkprune.tensorio;

/**
 * The small float formats of quantized checkpoints, decoded exactly to float by 256- or 16-entry
 * tables and encoded with round to nearest, ties to even (the rounding of PyTorch's and
 * ml_dtypes' casts):
 * <ul>
 *   <li>F8_E4M3 (OCP E4M3FN, PyTorch {@code float8_e4m3fn}): bias 7, subnormals, no infinities,
 *       {@code S.1111.111} is NaN, largest finite 448;
 *   <li>F8_E5M2 (PyTorch {@code float8_e5m2}): IEEE-like, bias 15, {@code S.11111.00} infinite,
 *       other {@code S.11111.xx} NaN, largest finite 57344;
 *   <li>E2M1 (OCP MX FP4): bias 1, no infinities or NaN, values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6};
 *   <li>E8M0 (OCP MX shared scale): 2^(e - 127), {@code 0xFF} is NaN.
 * </ul>
 */
public final class MiniFloats {
  public static final float E4M3_MAX = 448f;
  public static final float E2M1_MAX = 6f;
  /** The E8M0 code reserved for NaN. */
  public static final int E8M0_NAN = 0xFF;
  /** Exponent bias of E8M0: code e stands for 2^(e - 127). */
  public static final int E8M0_BIAS = 127;

  private static final float[] E4M3 = table(4, 3, 7, Specials.E4M3FN);
  private static final float[] E5M2 = table(5, 2, 15, Specials.IEEE);
  private static final float[] E2M1 = table(2, 1, 1, Specials.NONE);

  private enum Specials { NONE, E4M3FN, IEEE }

  private MiniFloats() {}

  public static float e4m3(int code) {
    return E4M3[code & 0xFF];
  }

  public static float e5m2(int code) {
    return E5M2[code & 0xFF];
  }

  /** The value of a 4-bit E2M1 code (the low nibble of {@code code}). */
  public static float e2m1(int code) {
    return E2M1[code & 0x0F];
  }

  /** 2^(code - 127) as a float (2^-127 is a float subnormal, exact); NaN for 0xFF. */
  public static float e8m0(int code) {
    int e = code & 0xFF;
    return e == E8M0_NAN ? Float.NaN : Math.scalb(1f, e - E8M0_BIAS);
  }

  /**
   * The F8_E4M3 code nearest to {@code value} (ties to the even code), saturating at ±448 as
   * NVIDIA's satfinite conversion does; NaN becomes 0x7F with the sign kept.
   */
  public static byte encodeE4m3(float value) {
    int sign = Float.floatToRawIntBits(value) >>> 31 << 7;
    if (Float.isNaN(value)) {
      return (byte) (sign | 0x7F);
    }
    return (byte) (sign | encodeMagnitude(Math.min(Math.abs(value), E4M3_MAX), 3, -6));
  }

  /**
   * The E2M1 code nearest to {@code value} (ties to the even code), saturating at ±6 as the OCP MX
   * conversion does. E2M1 has no NaN: callers check their values first.
   */
  public static int encodeE2m1(double value) {
    if (Double.isNaN(value)) {
      throw new IllegalArgumentException("E2M1 cannot hold NaN");
    }
    int sign = value < 0 || (value == 0 && 1 / value < 0) ? 0x8 : 0;
    return sign | encodeMagnitude(Math.min(Math.abs(value), E2M1_MAX), 1, 0);
  }

  /**
   * The code of a non-negative, in-range magnitude: e is its binade, clamped below to the binade of
   * the smallest normal so subnormals share one spacing; rint rounds the significand scaled to
   * integer units of that spacing, ties to even, and a carry to the next binade falls out of the
   * addition (code = binade offset x 2^mantissaBits + scaled significand).
   */
  private static int encodeMagnitude(double magnitude, int mantissaBits, int minExponent) {
    int exponent = Math.max(Math.getExponent(magnitude), minExponent);
    int units = (int) Math.rint(Math.scalb(magnitude, mantissaBits - exponent));
    return ((exponent - minExponent) << mantissaBits) + units;
  }

  /** The E8M0 code of 2^exponent, clamped to the representable 2^-127 .. 2^127. */
  public static int encodeE8m0(int exponent) {
    return Math.max(-E8M0_BIAS, Math.min(E8M0_BIAS, exponent)) + E8M0_BIAS;
  }

  /** Every code of a sign-exponent-mantissa format, from its bit fields. */
  private static float[] table(int exponentBits, int mantissaBits, int bias, Specials specials) {
    int codes = 1 << (1 + exponentBits + mantissaBits);
    int maxExponent = (1 << exponentBits) - 1;
    int maxMantissa = (1 << mantissaBits) - 1;
    float[] values = new float[codes];
    for (int code = 0; code < codes; code++) {
      boolean negative = (code >>> (exponentBits + mantissaBits)) != 0;
      int exponent = (code >>> mantissaBits) & maxExponent;
      int mantissa = code & maxMantissa;
      float magnitude;
      if (specials == Specials.E4M3FN && exponent == maxExponent && mantissa == maxMantissa) {
        magnitude = Float.NaN;
      } else if (specials == Specials.IEEE && exponent == maxExponent) {
        magnitude = mantissa == 0 ? Float.POSITIVE_INFINITY : Float.NaN;
      } else if (exponent == 0) {
        magnitude = Math.scalb((float) mantissa, 1 - bias - mantissaBits);
      } else {
        magnitude = Math.scalb((float) ((1 << mantissaBits) + mantissa), exponent - bias - mantissaBits);
      }
      values[code] = negative ? -magnitude : magnitude;
    }
    return values;
  }
}
