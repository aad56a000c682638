package dev.sparkprune.scoring.backend;

import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.Objects;

/**
 * The building blocks on the host: BLAS/LAPACK through netlib (native OpenBLAS where it loads,
 * Java otherwise), {@link Selection}'s radix select, and a column sweep that updates W in place.
 */
public final class CpuBackend implements ComputeBackend {
  private static volatile CpuBackend defaultInstance;

  private final LinearAlgebra linalg;

  public CpuBackend(LinearAlgebra linalg) {
    this.linalg = Objects.requireNonNull(linalg, "linalg is null");
  }

  /** On {@link NetlibLinearAlgebra#defaultInstance()}. */
  public static CpuBackend defaultInstance() {
    if (defaultInstance == null) {
      defaultInstance = new CpuBackend(NetlibLinearAlgebra.defaultInstance());
    }
    return defaultInstance;
  }

  @Override
  public String description() {
    return "cpu: " + linalg.description();
  }

  @Override
  public LinearAlgebra linearAlgebra() {
    return linalg;
  }

  @Override
  public float kthSmallest(float[] values, int from, int to, long k) {
    // A fresh instance: its scratch grows to the array's size and must not outlive the call.
    return new Selection().kthSmallest(values, from, to, k);
  }

  @Override
  public void pruneLowestPerRow(int rows, int cols, RowScorer scorer, int pruned, RowSink sink, int threads) {
    selectRows(rows, cols, scorer, sink, threads,
        (selection, scores, keepBits) -> selection.keepAllButLowest(scores, 0, cols, pruned, keepBits));
  }

  @Override
  public void pruneLowestPerGroup(int rows, int cols, RowScorer scorer, int pruned, int groupSize, RowSink sink, int threads) {
    selectRows(rows, cols, scorer, sink, threads,
        (selection, scores, keepBits) -> Selection.keepAllButLowestInGroups(scores, 0, cols, pruned, groupSize, keepBits));
  }

  /** One row's keep bits from its scores. */
  @FunctionalInterface
  private interface RowSelector {
    void select(Selection selection, float[] scores, byte[] keepBits);
  }

  /** Rows in parallel ranges, each range with its own selection scratch, score row and keep bits. */
  private static void selectRows(int rows, int cols, RowScorer scorer, RowSink sink, int threads, RowSelector selector) {
    RowParallel.forEach(rows, threads, (start, end) -> {
      Selection selection = new Selection();
      byte[] keepBits = new byte[Mask.rowBytes(cols)];
      for (int r = start; r < end; r++) {
        float[] scores = selection.rowScratch(cols);
        scorer.score(r, scores);
        selector.select(selection, scores, keepBits);
        sink.accept(r, keepBits);
      }
    });
  }

  /** W stays in its host array and is updated in place by this backend's GEMM. */
  @Override
  public ColumnSweep openColumnSweep(float[] w, int rows, int cols, float[] factor) {
    return new ColumnSweep() {
      @Override
      public void readBlock(int i1, int count, float[] block) {
        for (int r = 0; r < rows; r++) {
          System.arraycopy(w, r * cols + i1, block, r * count, count);
        }
      }

      @Override
      public void writeBlock(int i1, int count, float[] block) {
        for (int r = 0; r < rows; r++) {
          System.arraycopy(block, r * count, w, r * cols + i1, count);
        }
      }

      @Override
      public void updateRight(float[] e, int i1, int i2) {
        int count = i2 - i1;
        linalg.gemm(rows, cols - i2, count, -1f, e, 0, count, factor, i1 * cols + i2, cols, 1f, w, i2, cols);
      }

      @Override
      public float[] result() {
        return w;
      }

      @Override
      public void close() {}
    };
  }
}
