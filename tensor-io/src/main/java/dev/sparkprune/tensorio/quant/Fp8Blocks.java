package dev.sparkprune.tensorio.quant;

import dev.sparkprune.tensorio.MiniFloats;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;

/**
 * Block-scaled FP8 as DeepSeek-V3 ships it: a [rows x cols] F8_E4M3 weight and an F32
 * {@code weight_scale_inv} of [ceil(rows / 128), ceil(cols / 128)]; weight = code x scale of the
 * weight's 128x128 block. Plain loops over byte and float arrays; the reader does the I/O.
 */
public final class Fp8Blocks {
  public static final int BLOCK = Quantization.FP8_BLOCK;
  private static final float E4M3_MAX_INVERSE = 1f / MiniFloats.E4M3_MAX;

  private Fp8Blocks() {}

  /** ceil(length / 128): scale rows or columns of a weight dimension. */
  public static int blocks(long length) {
    return (int) ((length + BLOCK - 1) / BLOCK);
  }

  /**
   * Dequantizes rows [rowStart, rowStart + rowCount) of a [rows x cols] F8_E4M3 weight into
   * {@code destination}: the float32 product code x scale, as DeepSeek's weight_dequant and
   * transformers compute it (one rounding of the exact product). {@code codes} holds just those
   * rows; {@code scales} holds whole scale rows from scale row rowStart / 128 on.
   */
  public static void decodeRows(byte[] codes, long rowStart, int rowCount, int cols, float[] scales, float[] destination, int offset) {
    int scaleCols = blocks(cols);
    long firstScaleRow = rowStart / BLOCK;
    for (int r = 0; r < rowCount; r++) {
      int scaleBase = (int) ((rowStart + r) / BLOCK - firstScaleRow) * scaleCols;
      int row = r * cols;
      for (int block = 0; block < scaleCols; block++) {
        float scale = scales[scaleBase + block];
        int end = Math.min(cols, (block + 1) * BLOCK);
        for (int c = block * BLOCK; c < end; c++) {
          destination[offset + row + c] = MiniFloats.e4m3(codes[row + c]) * scale;
        }
      }
    }
  }

  /**
   * A re-quantized weight: codes [rows x cols], scales [ceil(rows/128) x ceil(cols/128)], the
   * error against the floats, and how many blocks were quantized anew (the others kept).
   */
  public record Quantized(byte[] codes, float[] scales, QuantizationError error, int requantizedBlocks) {}

  /**
   * Quantizes a [rows x cols] float weight with the release's rule: per 128x128 block, scale =
   * amax / 448 (float32 division; a power of two rounded up for {@code ue8m0}, as DeepSeek-V3.1's
   * kernels do; 1 for an all-zero block, as transformers stores), code = E4M3(w / scale) rounded
   * to nearest even and saturated at ±448. Zeros stay exactly zero, so a pruned mask survives.
   */
  public static Quantized quantize(String tensor, float[] values, int rows, int cols, Quantization.ScaleFormat format) {
    return update(tensor, values, rows, cols, null, null, format);
  }

  /**
   * Re-quantizes updated floats against the stored source weight: a block whose every value is
   * the source's dequantized value or zero keeps its scale and codes, zeroed where pruned (exact:
   * pruning alone never re-rounds a weight); any other block is quantized anew as by
   * {@link #quantize}. {@code sourceCodes} and {@code sourceScales} are the whole stored weight.
   */
  public static Quantized update(
      String tensor, float[] values, int rows, int cols, byte[] sourceCodes, float[] sourceScales, Quantization.ScaleFormat format) {
    ValidationException.check(
        values.length == (long) rows * cols, "Cannot re-quantize %s: %d values for shape [%d, %d]", tensor, values.length, rows, cols);
    int scaleRows = blocks(rows);
    int scaleCols = blocks(cols);
    byte[] codes = new byte[values.length];
    float[] scales = new float[scaleRows * scaleCols];
    QuantizationError.Accumulator error = new QuantizationError.Accumulator();
    int requantized = 0;
    for (int blockRow = 0; blockRow < scaleRows; blockRow++) {
      int rowStart = blockRow * BLOCK;
      int rowEnd = Math.min(rows, rowStart + BLOCK);
      for (int blockCol = 0; blockCol < scaleCols; blockCol++) {
        int colStart = blockCol * BLOCK;
        int colEnd = Math.min(cols, colStart + BLOCK);
        int block = blockRow * scaleCols + blockCol;
        if (sourceCodes != null && onlyPruned(values, cols, rowStart, rowEnd, colStart, colEnd, sourceCodes, sourceScales[block])) {
          scales[block] = sourceScales[block];
          for (int r = rowStart; r < rowEnd; r++) {
            for (int c = colStart; c < colEnd; c++) {
              int index = r * cols + c;
              // A pruned weight gets +0; a stored zero (either sign) stays as it was.
              codes[index] = values[index] == 0 && MiniFloats.e4m3(sourceCodes[index]) != 0 ? 0 : sourceCodes[index];
              error.add(values[index], values[index]);
            }
          }
          continue;
        }
        requantized++;
        float amax = 0;
        for (int r = rowStart; r < rowEnd; r++) {
          for (int c = colStart; c < colEnd; c++) {
            float value = values[r * cols + c];
            checkFinite(tensor, value, r, c);
            amax = Math.max(amax, Math.abs(value));
          }
        }
        float scale = scale(amax, format);
        scales[block] = scale;
        for (int r = rowStart; r < rowEnd; r++) {
          for (int c = colStart; c < colEnd; c++) {
            int index = r * cols + c;
            byte code = MiniFloats.encodeE4m3(values[index] / scale);
            codes[index] = code;
            error.add(values[index], MiniFloats.e4m3(code) * scale);
          }
        }
      }
    }
    return new Quantized(codes, scales, error.result(), requantized);
  }

  /** Whether every value of a block is its source value (code x scale, as read) or zero. */
  private static boolean onlyPruned(
      float[] values, int cols, int rowStart, int rowEnd, int colStart, int colEnd, byte[] sourceCodes, float scale) {
    for (int r = rowStart; r < rowEnd; r++) {
      for (int c = colStart; c < colEnd; c++) {
        int index = r * cols + c;
        float value = values[index];
        if (value != 0 && Float.floatToRawIntBits(value) != Float.floatToRawIntBits(MiniFloats.e4m3(sourceCodes[index]) * scale)) {
          return false;
        }
      }
    }
    return true;
  }

  /** The weight_scale_inv of a block whose largest magnitude is {@code amax}. */
  static float scale(float amax, Quantization.ScaleFormat format) {
    if (amax == 0) {
      return 1f;
    }
    if (format == Quantization.ScaleFormat.FLOAT) {
      return amax / MiniFloats.E4M3_MAX;
    }
    // 2^ceil(log2(amax x (1/448))) from the bits, as DeepSeek's fast_round_scale: the exponent,
    // plus one unless the mantissa is zero (an exact power of two stays).
    int bits = Float.floatToRawIntBits(amax * E4M3_MAX_INVERSE);
    int exponent = ((bits >>> 23) & 0xFF) - 127 + ((bits & 0x7FFFFF) != 0 ? 1 : 0);
    return Math.scalb(1f, exponent);
  }

  /**
   * Sets the codes of pruned weights to 0x00 (+0.0) in rows [rowStart, rowStart + rowCount) held
   * by {@code codes}; kept codes and the scales are untouched, so nothing else changes by a bit.
   * The mask covers the whole [rows x cols] weight, 1 = kept.
   */
  public static void mask(byte[] codes, long rowStart, int rowCount, int cols, Mask mask) {
    ValidationException.check(
        mask.cols() == cols && rowStart + rowCount <= mask.rows(),
        "Cannot mask FP8 rows [%d, %d) x %d with a [%d, %d] mask", rowStart, rowStart + rowCount, cols, mask.rows(), mask.cols());
    for (int r = 0; r < rowCount; r++) {
      int row = (int) (rowStart + r);
      for (int c = 0; c < cols; c++) {
        if (!mask.isKept(row, c)) {
          codes[r * cols + c] = 0;
        }
      }
    }
  }

  static void checkFinite(String tensor, float value, int row, int col) {
    if (!Float.isFinite(value)) {
      throw new ValidationException(String.format("Cannot re-quantize %s: weight [%d, %d] is %s", tensor, row, col, value));
    }
  }
}
