package dev.sparkprune.scoring;

import dev.sparkprune.tensorio.ValidationException;
import java.util.Objects;

/**
 * A linear's weight matrix in [out, in] orientation, row-major float: rows are output features,
 * columns input features (the layout of {@code nn.Linear.weight}).
 */
public final class Weights {
  private final int rows;
  private final int cols;
  private final float[] values;

  private Weights(int rows, int cols, float[] values) {
    this.rows = rows;
    this.cols = cols;
    this.values = values;
  }

  /** Wraps {@code values} without copying; kernels never modify their input. */
  public static Weights of(int rows, int cols, float[] values) {
    Objects.requireNonNull(values, "values is null");
    ValidationException.check(rows >= 0 && cols >= 0, "Invalid weight shape [%d, %d]", rows, cols);
    ValidationException.check(
        values.length == (long) rows * cols, "Invalid weights: %d values for shape [%d, %d]", values.length, rows, cols);
    return new Weights(rows, cols, values);
  }

  public int rows() {
    return rows;
  }

  public int cols() {
    return cols;
  }

  public long size() {
    return (long) rows * cols;
  }

  /** The backing array; callers must not modify it. */
  public float[] values() {
    return values;
  }

  public float get(int row, int col) {
    return values[row * cols + col];
  }

  /** Fails naming the layer and position of the first NaN or infinite weight. */
  public void checkFinite(String layer) {
    checkFinite(layer, RowParallel.defaultThreads());
  }

  /** As {@link #checkFinite(String)}, scanning rows on {@code threads} threads. */
  public void checkFinite(String layer, int threads) {
    int[] firstBadRow = {Integer.MAX_VALUE};
    RowParallel.forEach(rows, threads, (start, end) -> {
      for (int r = start; r < end; r++) {
        boolean finite = true;
        for (int c = 0; c < cols; c++) {
          finite &= Float.isFinite(values[r * cols + c]);
        }
        if (!finite) {
          synchronized (firstBadRow) {
            firstBadRow[0] = Math.min(firstBadRow[0], r);
          }
          return;
        }
      }
    });
    if (firstBadRow[0] != Integer.MAX_VALUE) {
      int r = firstBadRow[0];
      for (int c = 0; c < cols; c++) {
        float value = values[r * cols + c];
        if (!Float.isFinite(value)) {
          throw new ValidationException(String.format("Cannot prune layer %s: weight [%d, %d] is %s", layer, r, c, value));
        }
      }
    }
  }
}
