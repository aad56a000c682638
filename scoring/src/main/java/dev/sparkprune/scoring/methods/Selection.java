package dev.sparkprune.scoring.methods;

import dev.sparkprune.tensorio.mask.Mask;

/**
 * Order statistics on float scores without sorting: a three-pass radix select (11, 11, 10 bits
 * of an order-preserving key) finds the exact k-th smallest value in O(n) and allocates nothing
 * after construction. One instance per thread.
 */
final class Selection {
  private final int[] histogram = new int[1 << 11];

  /** The value of 0-based rank {@code k} among {@code values[from, to)}; no NaNs allowed. */
  float kthSmallest(float[] values, int from, int to, long k) {
    if (k < 0 || k >= to - from) {
      throw new IllegalArgumentException("Invalid rank " + k + " of " + (to - from) + " values");
    }
    int prefix = 0;
    int prefixMask = 0;
    long rank = k;
    int[] shifts = {21, 10, 0};
    int[] widths = {11, 11, 10};
    for (int pass = 0; pass < 3; pass++) {
      int shift = shifts[pass];
      int digitMask = (1 << widths[pass]) - 1;
      java.util.Arrays.fill(histogram, 0, digitMask + 1, 0);
      for (int i = from; i < to; i++) {
        int key = key(values[i]);
        if ((key & prefixMask) == prefix) {
          histogram[(key >>> shift) & digitMask]++;
        }
      }
      int digit = 0;
      while (rank >= histogram[digit]) {
        rank -= histogram[digit];
        digit++;
      }
      prefix |= digit << shift;
      prefixMask |= digitMask << shift;
    }
    return fromKey(prefix);
  }

  /**
   * Prunes exactly {@code k} entries of {@code row} whose scores are {@code scores[from, from +
   * cols)}: the lowest scores, ties broken toward the lower column, as a stable ascending sort
   * would order them.
   */
  void pruneLowest(float[] scores, int from, int cols, int k, Mask.Builder mask, int row) {
    if (k <= 0) {
      return;
    }
    float threshold = kthSmallest(scores, from, from + cols, k - 1);
    int below = 0;
    for (int c = 0; c < cols; c++) {
      if (scores[from + c] < threshold) {
        mask.prune(row, c);
        below++;
      }
    }
    int ties = k - below;
    for (int c = 0; c < cols && ties > 0; c++) {
      if (scores[from + c] == threshold) {
        mask.prune(row, c);
        ties--;
      }
    }
  }

  /**
   * N:M on one row: in every group of {@code groupSize} consecutive columns starting at
   * {@code groupStart}, prunes the {@code pruned} lowest scores (ties toward the lower column).
   */
  static void pruneLowestInGroup(float[] scores, int from, int groupStart, int groupEnd, int pruned, Mask.Builder mask, int row) {
    for (int n = 0; n < pruned; n++) {
      int lowest = -1;
      for (int c = groupStart; c < groupEnd; c++) {
        if (mask.isKept(row, c) && (lowest < 0 || scores[from + c] < scores[from + lowest])) {
          lowest = c;
        }
      }
      mask.prune(row, lowest);
    }
  }

  /** Order-preserving map from float to int compared as unsigned: -Inf < ... < -0 < +0 < ... < +Inf. */
  static int key(float value) {
    int bits = Float.floatToRawIntBits(value);
    return bits ^ ((bits >> 31) | 0x80000000);
  }

  static float fromKey(int key) {
    return Float.intBitsToFloat(key < 0 ? key ^ 0x80000000 : ~key);
  }
}
