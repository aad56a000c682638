package dev.sparkprune.tensorio.mask;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.Arrays;

/**
 * Which weights of a [rows x cols] matrix are kept, as packed bits: 1 = kept, row-major, each row
 * starting on a byte boundary, little-endian bit order inside a byte (column c of a row is bit
 * {@code c % 8} of byte {@code c / 8}), padding bits zero. This is numpy's
 * {@code packbits(kept, axis=1, bitorder="little")} and the layout of the Parquet mask output.
 */
public final class Mask implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int rows;
  private final int cols;
  private final int rowBytes;
  private final byte[] bits;

  private Mask(int rows, int cols, byte[] bits) {
    this.rows = rows;
    this.cols = cols;
    this.rowBytes = rowBytes(cols);
    this.bits = bits;
  }

  public static int rowBytes(int cols) {
    return (cols + 7) >>> 3;
  }

  /** Wraps packed bits in this layout, checking the length and that padding bits are zero. */
  public static Mask fromBits(int rows, int cols, byte[] bits) {
    ValidationException.check(rows >= 0 && cols >= 0, "Invalid mask shape [%d, %d]", rows, cols);
    long expected = (long) rows * rowBytes(cols);
    ValidationException.check(
        bits.length == expected, "Invalid mask for [%d, %d]: %d bytes, expected %d", rows, cols, bits.length, expected);
    int tail = cols & 7;
    if (tail != 0) {
      int padding = 0xFF << tail & 0xFF;
      for (int r = 0; r < rows; r++) {
        ValidationException.check(
            (bits[r * rowBytes(cols) + rowBytes(cols) - 1] & padding) == 0, "Invalid mask: row %d has padding bits set", r);
      }
    }
    return new Mask(rows, cols, bits.clone());
  }

  /** From one byte per weight with 1 = pruned (the fixtures' and PyTorch's boolean mask). */
  public static Mask fromPrunedFlags(int rows, int cols, byte[] pruned) {
    ValidationException.check(
        pruned.length == (long) rows * cols, "Invalid pruned flags for [%d, %d]: %d entries", rows, cols, pruned.length);
    Builder builder = builder(rows, cols);
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        if (pruned[r * cols + c] != 0) {
          builder.prune(r, c);
        }
      }
    }
    return builder.build();
  }

  public static Builder builder(int rows, int cols) {
    return new Builder(rows, cols);
  }

  public int rows() {
    return rows;
  }

  public int cols() {
    return cols;
  }

  public boolean isKept(int row, int col) {
    return (bits[row * rowBytes + (col >>> 3)] >>> (col & 7) & 1) != 0;
  }

  public int keptInRow(int row) {
    int count = 0;
    for (int b = row * rowBytes; b < (row + 1) * rowBytes; b++) {
      count += Integer.bitCount(bits[b] & 0xFF);
    }
    return count;
  }

  public long keptCount() {
    long count = 0;
    for (byte b : bits) {
      count += Integer.bitCount(b & 0xFF);
    }
    return count;
  }

  public long prunedCount() {
    return (long) rows * cols - keptCount();
  }

  public double sparsity() {
    long total = (long) rows * cols;
    return total == 0 ? 0 : (double) prunedCount() / total;
  }

  /** The packed bits of rows {@code [rowStart, rowStart + rowCount)}, a copy. */
  public byte[] bits(int rowStart, int rowCount) {
    return Arrays.copyOfRange(bits, rowStart * rowBytes, (rowStart + rowCount) * rowBytes);
  }

  public byte[] bits() {
    return bits.clone();
  }

  /** Zeroes the pruned entries of a row-major [rows x cols] weight array in place. */
  public void applyTo(float[] weights) {
    ValidationException.check(
        weights.length == (long) rows * cols, "Cannot apply a [%d, %d] mask to %d weights", rows, cols, weights.length);
    for (int r = 0; r < rows; r++) {
      for (int b = 0; b < rowBytes; b++) {
        int keep = bits[r * rowBytes + b] & 0xFF;
        int first = b << 3;
        int count = Math.min(8, cols - first);
        if (keep != (1 << count) - 1) {
          for (int k = 0; k < count; k++) {
            if ((keep >>> k & 1) == 0) {
              weights[r * cols + first + k] = 0f;
            }
          }
        }
      }
    }
  }

  @Override
  public boolean equals(Object other) {
    if (this == other) {
      return true;
    }
    if (!(other instanceof Mask)) {
      return false;
    }
    Mask that = (Mask) other;
    return rows == that.rows && cols == that.cols && Arrays.equals(bits, that.bits);
  }

  @Override
  public int hashCode() {
    return 31 * (31 * rows + cols) + Arrays.hashCode(bits);
  }

  @Override
  public String toString() {
    return "Mask[" + rows + " x " + cols + ", " + prunedCount() + " pruned]";
  }

  /**
   * Starts with every weight kept. Rows occupy disjoint bytes, so threads may prune in different
   * rows concurrently.
   */
  public static final class Builder {
    private final int rows;
    private final int cols;
    private final int rowBytes;
    private final byte[] bits;

    private Builder(int rows, int cols) {
      ValidationException.check(rows >= 0 && cols >= 0, "Invalid mask shape [%d, %d]", rows, cols);
      ValidationException.check(
          (long) rows * rowBytes(cols) <= Integer.MAX_VALUE - 16, "Cannot hold a [%d, %d] mask in one array", rows, cols);
      this.rows = rows;
      this.cols = cols;
      this.rowBytes = rowBytes(cols);
      this.bits = new byte[rows * rowBytes];
      byte[] fullRow = new byte[rowBytes];
      Arrays.fill(fullRow, (byte) 0xFF);
      if ((cols & 7) != 0) {
        fullRow[rowBytes - 1] = (byte) ((1 << (cols & 7)) - 1);
      }
      for (int r = 0; r < rows; r++) {
        System.arraycopy(fullRow, 0, bits, r * rowBytes, rowBytes);
      }
    }

    public Builder prune(int row, int col) {
      int index = row * rowBytes + (col >>> 3);
      bits[index] = (byte) (bits[index] & ~(1 << (col & 7)));
      return this;
    }

    /** Replaces a whole row with packed keep bits in the mask layout (padding bits must be 0). */
    public Builder setRow(int row, byte[] rowBits) {
      System.arraycopy(rowBits, 0, bits, row * rowBytes, rowBytes);
      return this;
    }

    public Mask build() {
      return new Mask(rows, cols, bits.clone());
    }
  }
}
