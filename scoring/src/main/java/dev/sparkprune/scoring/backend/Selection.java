package dev.sparkprune.scoring.backend;

import dev.sparkprune.tensorio.mask.Mask;
import java.util.Arrays;

/**
 * Order statistics on float scores without sorting, and row masks built a byte at a time: the
 * CPU backend's selection blocks, and the keep-bit helpers the methods share (1 = kept, a row's
 * bits packed least significant first, as {@link Mask} stores them).
 *
 * <p>The k-th smallest value comes from a radix select on an order-preserving int key: a first
 * pass histograms the top 11 bits (four interleaved histograms, because scores share exponents
 * and a single histogram would serialize on the same few counters), then only the keys in the
 * chosen bucket are compacted and refined on the next 11 and last 10 bits. O(n), exact,
 * deterministic. One instance per thread: it owns its scratch arrays.
 */
public final class Selection {
  private static final int TOP_BITS = 11;
  private static final int TOP_BUCKETS = 1 << TOP_BITS;

  private final int[] histograms = new int[4 * TOP_BUCKETS];
  private int[] keys = new int[0];
  private float[] rowScratch = new float[0];

  /** The CPU backend's; methods select through {@link ComputeBackend}. */
  Selection() {}

  /** A per-thread scratch row of at least {@code length} floats. */
  float[] rowScratch(int length) {
    if (rowScratch.length < length) {
      rowScratch = new float[length];
    }
    return rowScratch;
  }

  /** The value of 0-based rank {@code k} among {@code values[from, to)}; no NaNs allowed. */
  float kthSmallest(float[] values, int from, int to, long k) {
    int n = to - from;
    if (k < 0 || k >= n) {
      throw new IllegalArgumentException("Invalid rank " + k + " of " + n + " values");
    }
    Arrays.fill(histograms, 0);
    int i = from;
    for (; i + 3 < to; i += 4) {
      histograms[key(values[i]) >>> 21]++;
      histograms[TOP_BUCKETS + (key(values[i + 1]) >>> 21)]++;
      histograms[2 * TOP_BUCKETS + (key(values[i + 2]) >>> 21)]++;
      histograms[3 * TOP_BUCKETS + (key(values[i + 3]) >>> 21)]++;
    }
    for (; i < to; i++) {
      histograms[key(values[i]) >>> 21]++;
    }
    long rank = k;
    int bucket = 0;
    while (true) {
      int count = histograms[bucket] + histograms[TOP_BUCKETS + bucket] + histograms[2 * TOP_BUCKETS + bucket]
          + histograms[3 * TOP_BUCKETS + bucket];
      if (rank < count) {
        break;
      }
      rank -= count;
      bucket++;
    }
    // Compact the keys of the chosen bucket, then refine on the remaining 21 bits.
    if (keys.length < n) {
      keys = new int[n];
    }
    int size = 0;
    for (i = from; i < to; i++) {
      int key = key(values[i]);
      keys[size] = key;
      size += (key >>> 21) == bucket ? 1 : 0;
    }
    int prefix = bucket << 21;
    int prefixMask = -1 << 21;
    int[] shifts = {10, 0};
    int[] widths = {11, 10};
    for (int pass = 0; pass < 2; pass++) {
      int shift = shifts[pass];
      int digitMask = (1 << widths[pass]) - 1;
      Arrays.fill(histograms, 0, digitMask + 1, 0);
      for (int j = 0; j < size; j++) {
        int key = keys[j];
        if ((key & prefixMask) == prefix) {
          histograms[(key >>> shift) & digitMask]++;
        }
      }
      int digit = 0;
      while (rank >= histograms[digit]) {
        rank -= histograms[digit];
        digit++;
      }
      prefix |= digit << shift;
      prefixMask |= digitMask << shift;
    }
    return fromKey(prefix);
  }

  /**
   * Keep bits of one row: the {@code k} lowest of {@code scores[from, from + cols)} pruned, ties
   * toward the lower column as a stable ascending sort orders them.
   */
  void keepAllButLowest(float[] scores, int from, int cols, int k, byte[] keepBits) {
    if (k <= 0) {
      keepAll(cols, keepBits);
      return;
    }
    float threshold = kthSmallest(scores, from, from + cols, k - 1);
    int below = keepAtLeast(scores, from, cols, threshold, false, keepBits);
    int ties = k - below;
    for (int c = 0; c < cols && ties > 0; c++) {
      if (scores[from + c] == threshold) {
        prune(keepBits, 0, c);
        ties--;
      }
    }
  }

  /**
   * Sets keep bits for scores above {@code threshold} (also those equal to it unless
   * {@code pruneEqual}) and returns how many were pruned.
   */
  public static int keepAtLeast(float[] scores, int from, int cols, float threshold, boolean pruneEqual, byte[] keepBits) {
    int pruned = 0;
    int rowBytes = Mask.rowBytes(cols);
    for (int b = 0; b < rowBytes; b++) {
      int first = b << 3;
      int count = Math.min(8, cols - first);
      int bits = 0;
      for (int j = 0; j < count; j++) {
        float score = scores[from + first + j];
        boolean keep = pruneEqual ? score > threshold : score >= threshold;
        bits |= keep ? 1 << j : 0;
      }
      pruned += count - Integer.bitCount(bits);
      keepBits[b] = (byte) bits;
    }
    return pruned;
  }

  public static void keepAll(int cols, byte[] keepBits) {
    keepAll(cols, keepBits, 0);
  }

  public static void keepAll(int cols, byte[] keepBits, int keepOffset) {
    int rowBytes = Mask.rowBytes(cols);
    Arrays.fill(keepBits, keepOffset, keepOffset + rowBytes, (byte) 0xFF);
    if ((cols & 7) != 0) {
      keepBits[keepOffset + rowBytes - 1] = (byte) ((1 << (cols & 7)) - 1);
    }
  }

  /**
   * N:M keep bits of one row: in every group of {@code groupSize} consecutive columns, the
   * {@code pruned} lowest scores are pruned (ties toward the lower column).
   */
  static void keepAllButLowestInGroups(float[] scores, int from, int cols, int pruned, int groupSize, byte[] keepBits) {
    keepAll(cols, keepBits);
    for (int g = 0; g < cols; g += groupSize) {
      pruneLowestInGroup(scores, from, g, Math.min(g + groupSize, cols), pruned, keepBits, 0);
    }
  }

  /**
   * Prunes the {@code pruned} lowest still-kept scores of columns [groupStart, groupEnd) in the
   * row whose keep bits start at {@code keepBits[keepOffset]}.
   */
  public static void pruneLowestInGroup(
      float[] scores, int from, int groupStart, int groupEnd, int pruned, byte[] keepBits, int keepOffset) {
    for (int n = 0; n < pruned; n++) {
      int lowest = -1;
      for (int c = groupStart; c < groupEnd; c++) {
        if (isKept(keepBits, keepOffset, c) && (lowest < 0 || scores[from + c] < scores[from + lowest])) {
          lowest = c;
        }
      }
      prune(keepBits, keepOffset, lowest);
    }
  }

  public static boolean isKept(byte[] keepBits, int keepOffset, int col) {
    return (keepBits[keepOffset + (col >>> 3)] >>> (col & 7) & 1) != 0;
  }

  public static void prune(byte[] keepBits, int keepOffset, int col) {
    keepBits[keepOffset + (col >>> 3)] &= (byte) ~(1 << (col & 7));
  }

  /**
   * out[to + c] = keep ? w[from + c] : +0 for one row, branch-free (a 50% mask would mispredict
   * every other branch): the float's bits are ANDed with all ones or all zeros.
   */
  public static void applyRow(byte[] keepBits, float[] w, int from, float[] out, int to, int cols) {
    for (int c = 0; c < cols; c++) {
      int keep = -((keepBits[c >>> 3] >>> (c & 7)) & 1);
      out[to + c] = Float.intBitsToFloat(Float.floatToRawIntBits(w[from + c]) & keep);
    }
  }

  /** Order-preserving map from float to int compared as unsigned: -Inf < ... < -0 < +0 < ... < +Inf. */
  public static int key(float value) {
    int bits = Float.floatToRawIntBits(value);
    return bits ^ ((bits >> 31) | 0x80000000);
  }

  static float fromKey(int key) {
    return Float.intBitsToFloat(key < 0 ? key ^ 0x80000000 : ~key);
  }
}
