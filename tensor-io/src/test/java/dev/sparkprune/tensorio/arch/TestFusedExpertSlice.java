package dev.sparkprune.tensorio.arch;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * The fused gpt-oss layout against a direct reading of transformers' GptOssExperts: per expert,
 * gate_up_proj[e] is [hidden, 2 x intermediate] with gate = gate_up[:, ::2] and up = gate_up[:, 1::2]
 * (so gate's weight [out, in] is the even columns transposed), down_proj[e] is [intermediate, hidden].
 */
class TestFusedExpertSlice {
  private static final int EXPERTS = 3;
  private static final int HIDDEN = 4;
  private static final int INTERMEDIATE = 2;

  /** gate_up value of expert e, input i, column c: distinct everywhere. */
  private static float gateUp(int e, int i, int c) {
    return 100 * e + 10 * i + c;
  }

  @Test
  void gateAndUpAreTheEvenAndOddColumnsTransposedAndScatterPutsThemBack() {
    int width = 2 * INTERMEDIATE;
    float[] fused = new float[EXPERTS * HIDDEN * width];
    for (int e = 0; e < EXPERTS; e++) {
      for (int i = 0; i < HIDDEN; i++) {
        for (int c = 0; c < width; c++) {
          fused[(e * HIDDEN + i) * width + c] = gateUp(e, i, c);
        }
      }
    }
    FusedExpertSlice gate = new FusedExpertSlice("gate_up_proj", 1, FusedExpertSlice.Part.GATE, INTERMEDIATE, HIDDEN);
    FusedExpertSlice up = new FusedExpertSlice("gate_up_proj", 1, FusedExpertSlice.Part.UP, INTERMEDIATE, HIDDEN);
    float[] expert = java.util.Arrays.copyOfRange(fused, HIDDEN * width, 2 * HIDDEN * width);
    float[] gateWeight = gate.outByIn(expert);
    float[] upWeight = up.outByIn(expert);
    for (int o = 0; o < INTERMEDIATE; o++) {
      for (int i = 0; i < HIDDEN; i++) {
        assertThat(gateWeight[o * HIDDEN + i]).isEqualTo(gateUp(1, i, 2 * o));
        assertThat(upWeight[o * HIDDEN + i]).isEqualTo(gateUp(1, i, 2 * o + 1));
      }
    }
    // Scattering a changed up into the whole fused tensor touches expert 1's odd columns only.
    float[] changed = upWeight.clone();
    for (int k = 0; k < changed.length; k++) {
      changed[k] = -changed[k];
    }
    float[] patched = fused.clone();
    up.scatter(changed, patched, HIDDEN * width);
    for (int e = 0; e < EXPERTS; e++) {
      for (int i = 0; i < HIDDEN; i++) {
        for (int c = 0; c < width; c++) {
          float expected = e == 1 && c % 2 == 1 ? -gateUp(e, i, c) : gateUp(e, i, c);
          assertThat(patched[(e * HIDDEN + i) * width + c]).as("[%d, %d, %d]", e, i, c).isEqualTo(expected);
        }
      }
    }
  }

  @Test
  void storedBytesArePatchedAtTheSlicesColumnsOrRows() {
    // BF16 down_proj[e] [intermediate = in, hidden = out], 2 bytes a value: value (i, o) at (i * out + o) * 2.
    FusedExpertSlice down = new FusedExpertSlice("down_proj", 0, FusedExpertSlice.Part.DOWN, HIDDEN, INTERMEDIATE);
    byte[] expert = new byte[INTERMEDIATE * HIDDEN * 2];
    byte[] staged = new byte[HIDDEN * INTERMEDIATE * 2];
    for (int o = 0; o < HIDDEN; o++) {
      for (int i = 0; i < INTERMEDIATE; i++) {
        staged[(o * INTERMEDIATE + i) * 2] = (byte) (10 * o + i);
        staged[(o * INTERMEDIATE + i) * 2 + 1] = (byte) 0x7F;
      }
    }
    down.patchPlain(staged, expert, 2);
    for (int i = 0; i < INTERMEDIATE; i++) {
      for (int o = 0; o < HIDDEN; o++) {
        assertThat(expert[(i * HIDDEN + o) * 2]).isEqualTo((byte) (10 * o + i));
        assertThat(expert[(i * HIDDEN + o) * 2 + 1]).isEqualTo((byte) 0x7F);
      }
    }
    // MXFP4 gate_up_proj_blocks[e] [2 x intermediate rows, 3 bytes each]: gate's row j is stored row 2j.
    FusedExpertSlice gate = new FusedExpertSlice("gate_up_proj", 2, FusedExpertSlice.Part.GATE, INTERMEDIATE, HIDDEN);
    byte[] rows = {1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4};
    assertThat(gate.rows(rows, 3)).containsExactly(1, 1, 1, 3, 3, 3);
    gate.patchRows(new byte[] {9, 9, 9, 8, 8, 8}, rows, 3);
    assertThat(rows).containsExactly(9, 9, 9, 2, 2, 2, 8, 8, 8, 4, 4, 4);
  }
}
