package dev.sparkprune.tensorio;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * The small float formats against their definitions, code by code: each expected value here is
 * computed from the format's specification by a different route (double arithmetic, explicit
 * value lists), and ml_dtypes' own tables are compared in {@code TestFormatReferences}.
 */
class TestMiniFloats {
  /** (-1)^s x 2^(e - bias) x (1 + m / 2^mbits), or 2^(1 - bias) x m / 2^mbits when e = 0. */
  private static double ieeeLike(int code, int exponentBits, int mantissaBits, int bias) {
    int sign = code >> (exponentBits + mantissaBits) & 1;
    int exponent = code >> mantissaBits & ((1 << exponentBits) - 1);
    int mantissa = code & ((1 << mantissaBits) - 1);
    double fraction = mantissa / Math.pow(2, mantissaBits);
    double magnitude = exponent == 0 ? Math.pow(2, 1 - bias) * fraction : Math.pow(2, exponent - bias) * (1 + fraction);
    return sign == 1 ? -magnitude : magnitude;
  }

  @Test
  void e4m3fnHasNoInfinitiesOnlyTwoNansAndMax448() {
    for (int code = 0; code < 256; code++) {
      float value = MiniFloats.e4m3(code);
      if ((code & 0x7F) == 0x7F) {
        assertThat(value).as("code 0x%02X", code).isNaN();
      } else {
        assertThat((double) value).as("code 0x%02X", code).isEqualTo(ieeeLike(code, 4, 3, 7));
      }
    }
    assertThat(MiniFloats.e4m3(0x7E)).isEqualTo(448f);
    assertThat(MiniFloats.e4m3(0x01)).isEqualTo((float) Math.pow(2, -9));
    assertThat(Float.floatToRawIntBits(MiniFloats.e4m3(0x80))).isEqualTo(Float.floatToRawIntBits(-0f));
  }

  @Test
  void e5m2IsIeeeLikeWithInfinities() {
    for (int code = 0; code < 256; code++) {
      float value = MiniFloats.e5m2(code);
      int exponent = code >> 2 & 0x1F;
      if (exponent == 0x1F) {
        if ((code & 3) == 0) {
          assertThat(value).isInfinite();
        } else {
          assertThat(value).as("code 0x%02X", code).isNaN();
        }
      } else {
        assertThat((double) value).as("code 0x%02X", code).isEqualTo(ieeeLike(code, 5, 2, 15));
      }
    }
    assertThat(MiniFloats.e5m2(0x7B)).isEqualTo(57344f);
  }

  @Test
  void e2m1HasTheSixteenOcpValuesLowNibbleOnly() {
    float[] expected = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    for (int code = 0; code < 16; code++) {
      assertThat(Float.floatToRawIntBits(MiniFloats.e2m1(code))).as("code %d", code).isEqualTo(Float.floatToRawIntBits(expected[code]));
      assertThat(MiniFloats.e2m1(code | 0xF0)).isEqualTo(expected[code]);
    }
  }

  @Test
  void e8m0IsAPowerOfTwoWithBias127AndNanAt255() {
    for (int code = 0; code < 255; code++) {
      assertThat((double) MiniFloats.e8m0(code)).as("code %d", code).isEqualTo(Math.pow(2, code - 127));
    }
    assertThat(MiniFloats.e8m0(255)).isNaN();
    assertThat(MiniFloats.encodeE8m0(-200)).isEqualTo(0);
    assertThat(MiniFloats.encodeE8m0(0)).isEqualTo(127);
    assertThat(MiniFloats.encodeE8m0(500)).isEqualTo(254);
  }

  @Test
  void encodingEveryE4m3ValueGivesItsCodeBack() {
    for (int code = 0; code < 256; code++) {
      if ((code & 0x7F) != 0x7F) {
        assertThat(MiniFloats.encodeE4m3(MiniFloats.e4m3(code)) & 0xFF).as("code 0x%02X", code).isEqualTo(code);
      }
    }
  }

  @Test
  void e4m3EncodingRoundsToNearestTiesToTheEvenCode() {
    for (int code = 0; code < 0x7E; code++) {
      double low = MiniFloats.e4m3(code);
      double high = MiniFloats.e4m3(code + 1);
      float midpoint = (float) ((low + high) / 2);
      int even = code % 2 == 0 ? code : code + 1;
      assertThat(MiniFloats.encodeE4m3(midpoint) & 0xFF).as("midpoint of 0x%02X", code).isEqualTo(even);
      assertThat(MiniFloats.encodeE4m3(Math.nextDown(midpoint)) & 0xFF).isEqualTo(code);
      assertThat(MiniFloats.encodeE4m3(Math.nextUp(midpoint)) & 0xFF).isEqualTo(code + 1);
      assertThat(MiniFloats.encodeE4m3(-midpoint) & 0xFF).isEqualTo(0x80 | even);
    }
  }

  @Test
  void e4m3EncodingSaturatesAt448AndKeepsNan() {
    assertThat(MiniFloats.encodeE4m3(464f) & 0xFF).isEqualTo(0x7E);
    assertThat(MiniFloats.encodeE4m3(1e30f) & 0xFF).isEqualTo(0x7E);
    assertThat(MiniFloats.encodeE4m3(Float.NEGATIVE_INFINITY) & 0xFF).isEqualTo(0xFE);
    assertThat(MiniFloats.encodeE4m3(Float.NaN) & 0x7F).isEqualTo(0x7F);
    assertThat(MiniFloats.encodeE4m3(1e-30f)).isEqualTo((byte) 0);
    assertThat(MiniFloats.encodeE4m3(-1e-30f) & 0xFF).isEqualTo(0x80);
  }

  @Test
  void e2m1EncodingRoundsToNearestEvenAndSaturatesAt6() {
    for (int code = 0; code < 7; code++) {
      double low = MiniFloats.e2m1(code);
      double high = MiniFloats.e2m1(code + 1);
      double midpoint = (low + high) / 2;
      int even = code % 2 == 0 ? code : code + 1;
      assertThat(MiniFloats.encodeE2m1(midpoint)).as("midpoint of %d", code).isEqualTo(even);
      assertThat(MiniFloats.encodeE2m1(Math.nextDown(midpoint))).isEqualTo(code);
      assertThat(MiniFloats.encodeE2m1(Math.nextUp(midpoint))).isEqualTo(code + 1);
      assertThat(MiniFloats.encodeE2m1(-midpoint)).isEqualTo(0x8 | even);
      assertThat(MiniFloats.encodeE2m1(MiniFloats.e2m1(code))).isEqualTo(code);
    }
    assertThat(MiniFloats.encodeE2m1(7)).isEqualTo(7);
    assertThat(MiniFloats.encodeE2m1(-1e9)).isEqualTo(0xF);
    assertThat(MiniFloats.encodeE2m1(-0.0)).isEqualTo(0x8);
  }

  @Test
  void tensorCodecDecodesF8Tensors() {
    byte[] codes = {0x00, 0x38, (byte) 0xFE, 0x7C};
    float[] e4m3 = new float[4];
    float[] e5m2 = new float[4];
    TensorCodec.decode(DType.F8_E4M3, codes, 0, e4m3, 0, 4);
    TensorCodec.decode(DType.F8_E5M2, codes, 0, e5m2, 0, 4);
    assertThat(e4m3).containsExactly(0f, 1f, -448f, 384f);
    assertThat(e5m2[0]).isEqualTo(0f);
    assertThat(e5m2[1]).isEqualTo(0.5f);
    assertThat(e5m2[2]).isNaN();
    assertThat(e5m2[3]).isEqualTo(Float.POSITIVE_INFINITY);
  }
}
