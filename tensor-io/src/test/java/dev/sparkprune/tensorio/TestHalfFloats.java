package dev.sparkprune.tensorio;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Checks the bit-level conversions against a reference that rounds by search: among all finite
 * 16-bit values, the nearest one by exact double arithmetic, ties to the even bit pattern.
 */
class TestHalfFloats {

  /** Every finite non-negative value of a 16-bit format, ascending, as doubles (exact). */
  private static double[] finitePositives(boolean bf16) {
    List<Double> values = new ArrayList<>();
    for (int bits = 0; bits < 0x8000; bits++) {
      float value = bf16 ? HalfFloats.bf16ToFloat((short) bits) : HalfFloats.f16ToFloat((short) bits);
      if (Float.isFinite(value)) {
        values.add((double) value);
      }
    }
    double[] out = new double[values.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = values.get(i);
    }
    return out;
  }

  private static final double[] BF16_VALUES = finitePositives(true);
  private static final double[] F16_VALUES = finitePositives(false);

  /** Reference rounding: nearest representable, ties to even, overflow past the rounding edge to Inf. */
  private static short referenceRound(float value, boolean bf16) {
    double[] table = bf16 ? BF16_VALUES : F16_VALUES;
    int sign = Float.floatToRawIntBits(value) < 0 ? 0x8000 : 0;
    double magnitude = Math.abs((double) value);
    int lo = 0;
    int hi = table.length - 1;
    if (magnitude >= table[hi]) {
      double max = table[hi];
      double ulp = max - table[hi - 1];
      // Beyond max + ulp/2 (or exactly there: max has an odd mantissa) the value rounds to Inf.
      return (short) (sign | (magnitude >= max + ulp / 2 ? (bf16 ? 0x7F80 : 0x7C00) : hi));
    }
    while (hi - lo > 1) {
      int mid = (lo + hi) >>> 1;
      if (table[mid] <= magnitude) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    double below = magnitude - table[lo];
    double above = table[hi] - magnitude;
    int chosen = below < above ? lo : above < below ? hi : ((lo & 1) == 0 ? lo : hi);
    return (short) (sign | chosen);
  }

  private static List<Float> edgeValues() {
    List<Float> values = new ArrayList<>();
    float[] fixed = {
      0f, -0f, 1f, -1f, 65504f, 65519.99f, 65520f, 65536f, -65520f, 1e-8f, 2.9802322e-8f, 5.9604645e-8f,
      6.097555e-5f, 6.1035156e-5f, Float.MIN_VALUE, Float.MIN_NORMAL, Float.MAX_VALUE, -Float.MAX_VALUE,
      3.3895314e38f, 3.3961776e38f, 1.0009765625f, 1.00048828125f, 1.00146484375f, 1.00390625f, 1.001953125f,
      1.005859375f, 0.1f, 1.0f / 3, (float) Math.PI, 1e-40f, 1e-45f
    };
    for (float value : fixed) {
      values.add(value);
      values.add(Math.nextUp(value));
      values.add(Math.nextDown(value));
    }
    // Exact ties for both formats around assorted binades, including subnormal halves.
    for (int exponent = -26; exponent <= 16; exponent++) {
      for (int mantissa = 0; mantissa < 8; mantissa++) {
        float base = (float) Math.scalb(1.0 + mantissa / 1024.0, exponent);
        values.add(base + (float) Math.scalb(1.0, exponent - 11));
        values.add(base + (float) Math.scalb(1.0, exponent - 8));
        values.add(-base);
      }
    }
    return values;
  }

  @Test
  void bf16RoundsToNearestEvenOnEdgesAndRandomValues() {
    List<Float> values = edgeValues();
    SplittableRandom random = new SplittableRandom(7);
    for (int i = 0; i < 200_000; i++) {
      values.add(Float.intBitsToFloat(random.nextInt()));
    }
    for (float value : values) {
      if (Float.isNaN(value)) {
        continue;
      }
      assertThat(HalfFloats.floatToBf16(value))
          .as("bf16(%s) bits %08x", value, Float.floatToRawIntBits(value))
          .isEqualTo(referenceRound(value, true));
    }
  }

  @Test
  void f16RoundsToNearestEvenOnEdgesSubnormalsAndRandomValues() {
    List<Float> values = edgeValues();
    SplittableRandom random = new SplittableRandom(11);
    for (int i = 0; i < 200_000; i++) {
      // Concentrate on the half range: exponents -30..18.
      float magnitude = (float) Math.scalb(1.0 + random.nextDouble(), random.nextInt(-30, 18));
      values.add(random.nextBoolean() ? magnitude : -magnitude);
    }
    for (float value : values) {
      if (Float.isNaN(value)) {
        continue;
      }
      assertThat(HalfFloats.floatToF16(value))
          .as("f16(%s) bits %08x", value, Float.floatToRawIntBits(value))
          .isEqualTo(referenceRound(value, false));
    }
  }

  @Test
  void specialValuesKeepTheirClass() {
    assertThat(HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(Float.NaN))).isNaN();
    assertThat(HalfFloats.f16ToFloat(HalfFloats.floatToF16(Float.NaN))).isNaN();
    // A NaN whose payload sits only in the low bits must not truncate to infinity.
    float lowPayloadNaN = Float.intBitsToFloat(0x7F800001);
    assertThat(HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(lowPayloadNaN))).isNaN();
    assertThat(HalfFloats.f16ToFloat(HalfFloats.floatToF16(lowPayloadNaN))).isNaN();
    assertThat(HalfFloats.floatToBf16(Float.POSITIVE_INFINITY)).isEqualTo((short) 0x7F80);
    assertThat(HalfFloats.floatToBf16(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xFF80);
    assertThat(HalfFloats.floatToF16(Float.POSITIVE_INFINITY)).isEqualTo((short) 0x7C00);
    assertThat(HalfFloats.floatToF16(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xFC00);
    assertThat(HalfFloats.floatToF16(-0f)).isEqualTo((short) 0x8000);
    assertThat(HalfFloats.floatToF16(65520f)).isEqualTo((short) 0x7C00);
    assertThat(HalfFloats.floatToF16(65519.996f)).isEqualTo((short) 0x7BFF);
    assertThat(HalfFloats.f16ToFloat((short) 0x0001)).isEqualTo(5.9604645e-8f);
    assertThat(HalfFloats.f16ToFloat((short) 0x7BFF)).isEqualTo(65504f);
  }

  @Test
  void everyHalfValueRoundTripsExactly() {
    for (int bits = 0; bits < 0x10000; bits++) {
      short half = (short) bits;
      float asF16 = HalfFloats.f16ToFloat(half);
      float asBf16 = HalfFloats.bf16ToFloat(half);
      if (!Float.isNaN(asF16)) {
        assertThat(HalfFloats.floatToF16(asF16)).as("f16 %04x", bits).isEqualTo(half);
      }
      if (!Float.isNaN(asBf16)) {
        assertThat(HalfFloats.floatToBf16(asBf16)).as("bf16 %04x", bits).isEqualTo(half);
      }
    }
  }

  /** On JDK 20+ the platform's own converter is a second reference; on 17 the test shows as skipped. */
  @Test
  void agreesWithThePlatformConverterWhereAvailable() throws Exception {
    Optional<Method> platform = platformFloatToFloat16();
    assumeTrue(platform.isPresent(),
        () -> "Float.floatToFloat16 arrived in JDK 20, this is JDK " + Runtime.version().feature() + ": skipping the platform comparison");
    Method toHalf = platform.get();
    SplittableRandom random = new SplittableRandom(3);
    for (int i = 0; i < 100_000; i++) {
      float value = Float.intBitsToFloat(random.nextInt());
      if (!Float.isNaN(value)) {
        assertThat(HalfFloats.floatToF16(value)).isEqualTo((short) toHalf.invoke(null, value));
      }
    }
  }

  private static Optional<Method> platformFloatToFloat16() {
    try {
      return Optional.of(Float.class.getMethod("floatToFloat16", float.class));
    } catch (NoSuchMethodException e) {
      return Optional.empty();
    }
  }
}
