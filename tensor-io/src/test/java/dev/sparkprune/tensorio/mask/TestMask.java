package dev.sparkprune.tensorio.mask;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.ValidationException;
import org.junit.jupiter.api.Test;

class TestMask {

  @Test
  void bitsFollowNumpyPackbitsLittleWithByteAlignedRows() {
    // kept = [[1,0,1,1,0,0,0,0,1,1], [0,...,0,1]] -> packbits little per row.
    Mask.Builder builder = Mask.builder(2, 10);
    for (int c : new int[] {1, 4, 5, 6, 7}) {
      builder.prune(0, c);
    }
    for (int c = 0; c < 9; c++) {
      builder.prune(1, c);
    }
    Mask mask = builder.build();
    assertThat(mask.bits()).containsExactly(0b00001101, 0b00000011, 0, 0b00000010);
    assertThat(mask.keptInRow(0)).isEqualTo(5);
    assertThat(mask.keptInRow(1)).isEqualTo(1);
    assertThat(mask.prunedCount()).isEqualTo(14);
    assertThat(mask.isKept(0, 9)).isTrue();
    assertThat(mask.isKept(1, 8)).isFalse();
    assertThat(Mask.fromBits(2, 10, mask.bits())).isEqualTo(mask);
    assertThat(mask.bits(1, 1)).containsExactly(0, 0b00000010);
  }

  @Test
  void prunedFlagsAndApply() {
    byte[] pruned = {1, 0, 0, 1, 1, 1};
    Mask mask = Mask.fromPrunedFlags(2, 3, pruned);
    float[] weights = {1, 2, 3, 4, 5, 6};
    mask.applyTo(weights);
    assertThat(weights).containsExactly(0, 2, 3, 0, 0, 0);
    assertThat(mask.sparsity()).isEqualTo(4.0 / 6);
  }

  @Test
  void rejectsWrongLengthsAndSetPaddingBits() {
    assertThatThrownBy(() -> Mask.fromBits(2, 10, new byte[3]))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid mask for [2, 10]: 3 bytes, expected 4");
    assertThatThrownBy(() -> Mask.fromBits(1, 10, new byte[] {0, (byte) 0x04}))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid mask: row 0 has padding bits set");
  }
}
