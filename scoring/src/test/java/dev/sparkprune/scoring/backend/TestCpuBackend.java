package dev.sparkprune.scoring.backend;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * The CPU backend's building blocks against direct computations of their contracts: a sort for
 * the k-th smallest value, a stable sort per row (or per group) for the selection, a triple loop
 * for the column sweep's trailing update. Scores are drawn from a few levels so ties are common.
 */
class TestCpuBackend {
  private static final CpuBackend CPU = CpuBackend.defaultInstance();

  private static float[] scores(int count, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      // Few distinct values (ties), both signs, and zeros.
      values[i] = (random.nextInt(9) - 2) * 0.25f;
    }
    return values;
  }

  @Test
  void kthSmallestIsTheSortedArraysEntry() {
    float[] values = scores(1000, 1);
    float[] sorted = Arrays.copyOfRange(values, 100, 900);
    Arrays.sort(sorted);
    for (long k : new long[] {0, 1, 399, 798, 799}) {
      assertThat(CPU.kthSmallest(values, 100, 900, k)).as("rank %d", k).isEqualTo(sorted[(int) k]);
    }
  }

  /** Keep bits of one row with the {@code pruned} lowest of each group pruned, by a stable sort of the group. */
  private static boolean[] expectedKeep(float[] row, int pruned, int groupSize) {
    boolean[] keep = new boolean[row.length];
    Arrays.fill(keep, true);
    for (int g = 0; g < row.length; g += groupSize) {
      int start = g;
      Integer[] order = IntStream.range(start, start + groupSize).boxed().toArray(Integer[]::new);
      Arrays.sort(order, Comparator.comparingDouble(c -> row[c]));
      for (int i = 0; i < pruned; i++) {
        keep[order[i]] = false;
      }
    }
    return keep;
  }

  private static void assertSelection(int rows, int cols, float[] values, int pruned, int groupSize, int threads) {
    Mask.Builder mask = Mask.builder(rows, cols);
    int[] calls = new int[rows];
    ComputeBackend.RowScorer scorer = (row, scores) -> System.arraycopy(values, row * cols, scores, 0, cols);
    ComputeBackend.RowSink sink = (row, keepBits) -> {
      calls[row]++;
      mask.setRow(row, keepBits);
    };
    if (groupSize == cols) {
      CPU.pruneLowestPerRow(rows, cols, scorer, pruned, sink, threads);
    } else {
      CPU.pruneLowestPerGroup(rows, cols, scorer, pruned, groupSize, sink, threads);
    }
    Mask actual = mask.build();
    for (int r = 0; r < rows; r++) {
      assertThat(calls[r]).as("sink calls for row %d", r).isEqualTo(1);
      boolean[] expected = expectedKeep(Arrays.copyOfRange(values, r * cols, (r + 1) * cols), pruned, groupSize);
      for (int c = 0; c < cols; c++) {
        assertThat(actual.isKept(r, c)).as("row %d col %d (%d of %d pruned)", r, c, pruned, groupSize).isEqualTo(expected[c]);
      }
    }
  }

  @Test
  void rowSelectionPrunesTheLowestWithTiesTowardTheLowerColumn() {
    int rows = 23;
    int cols = 37;
    float[] values = scores(rows * cols, 2);
    for (int pruned : new int[] {0, 1, 18, 36}) {
      for (int threads : new int[] {1, 3}) {
        assertSelection(rows, cols, values, pruned, cols, threads);
      }
    }
  }

  @Test
  void groupSelectionPrunesTheLowestOfEveryGroup() {
    int rows = 19;
    int cols = 40;
    float[] values = scores(rows * cols, 3);
    assertSelection(rows, cols, values, 2, 4, 2);
    assertSelection(rows, cols, values, 4, 8, 1);
    assertSelection(rows, cols, values, 1, 5, 3);
  }

  @Test
  void columnSweepAppliesTheTrailingUpdateToTheColumnsRightOfTheBlock() {
    int rows = 6;
    int cols = 11;
    SplittableRandom random = new SplittableRandom(4);
    float[] w = new float[rows * cols];
    float[] factor = new float[cols * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) random.nextGaussian();
    }
    for (int i = 0; i < factor.length; i++) {
      factor[i] = (float) random.nextGaussian();
    }
    int i1 = 3;
    int i2 = 7;
    int count = i2 - i1;
    float[] e = new float[rows * count];
    for (int i = 0; i < e.length; i++) {
      e[i] = (float) random.nextGaussian();
    }
    float[] original = w.clone();
    float[] block = new float[rows * count];
    try (ColumnSweep sweep = new CpuBackend(NetlibLinearAlgebra.javaOnly()).openColumnSweep(w, rows, cols, factor)) {
      sweep.readBlock(i1, count, block);
      for (int r = 0; r < rows; r++) {
        for (int i = 0; i < count; i++) {
          assertThat(block[r * count + i]).isEqualTo(original[r * cols + i1 + i]);
          block[r * count + i] = -1f;
        }
      }
      sweep.writeBlock(i1, count, block);
      sweep.updateRight(e, i1, i2);
      float[] result = sweep.result();
      for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
          double expected = original[r * cols + c];
          if (c >= i1 && c < i2) {
            expected = -1;
          } else if (c >= i2) {
            for (int i = 0; i < count; i++) {
              expected -= (double) e[r * count + i] * factor[(i1 + i) * cols + c];
            }
          }
          assertThat((double) result[r * cols + c]).as("W[%d, %d]", r, c).isCloseTo(expected, org.assertj.core.data.Offset.offset(1e-5));
        }
      }
    }
  }
}
