package dev.sparkprune.scoring.backend;

/**
 * A row-major matrix W [rows x cols] held where the backend computes, swept left to right in
 * blocks of columns: the caller reads a block to the host, updates it there, writes it back, and
 * the backend applies the trailing update to the columns right of the block, the bulk of the
 * flops of a blocked OBS solver (SparseGPT's lazy batch update). On the CPU W stays in its host
 * array; a GPU keeps it resident and runs the update as one device GEMM.
 */
public interface ColumnSweep extends AutoCloseable {
  /** Copies W[:, i1:i1+count] into {@code block}, row-major [rows x count]. */
  void readBlock(int i1, int count, float[] block);

  /** Copies {@code block}, row-major [rows x count], back into W[:, i1:i1+count]. */
  void writeBlock(int i1, int count, float[] block);

  /** W[:, i2:] -= E F[i1:i2, i2:], with E row-major [rows x (i2 - i1)] and F the sweep's factor. */
  void updateRight(float[] e, int i1, int i2);

  /** The swept W, row-major [rows x cols]. */
  float[] result();

  @Override
  void close();
}
