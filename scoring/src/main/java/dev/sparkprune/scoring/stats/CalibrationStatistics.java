package dev.sparkprune.scoring.stats;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.ByteArrayFile;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Calibration statistics of one linear's input X (tokens x channels): token and sequence counts,
 * the per-channel sum of squares (Wanda's scaler_row = sum / sequences) and sum (with the squares,
 * DSnoT's per-channel mean and variance) and optionally X^T X
 * (SparseGPT's H = 2 / sequences * X^T X). Accumulators merge by addition, so Spark can reduce
 * them; floating-point addition makes merges associative up to rounding, so a job that needs
 * bit-identical results fixes the order in which partial statistics are merged.
 *
 * <p>X^T X is computed per chunk of at most {@link #CHUNK_TOKENS} tokens with a float SYRK
 * (BLAS) and added into the accumulator in double, or in float with {@link HessianStorage#FLOAT}
 * for very wide layers (half the memory).
 *
 * <p>Serialized layout ({@link #toBytes}): a safetensors file with {@code sum_squares} F64
 * [channels], {@code sums} F64 [channels] and, when kept, {@code xtx} F64 or F32 [channels,
 * channels] (full symmetric); {@code __metadata__} holds {@code format=sparkprune-statistics},
 * {@code version=2}, {@code channels}, {@code tokens} and {@code sequences}. Version 1 files (no
 * {@code sums}) still read: everything but {@link #channelSums} works on them.
 */
public final class CalibrationStatistics implements Serializable {
  private static final long serialVersionUID = 2L;

  /** The serialized layout's version: 2 added {@code sums}. */
  public static final int VERSION = 2;

  /** Tokens per SYRK call: bounds the float rounding of one chunk's sums. */
  public static final int CHUNK_TOKENS = 4096;

  /** Whether and how X^T X is kept. */
  public enum HessianStorage {
    NONE,
    FLOAT,
    DOUBLE
  }

  private final int channels;
  private final HessianStorage storage;
  private final double[] sumSquares;
  private final double[] sums;
  /** False for statistics read from a version 1 file, which has no per-channel sums. */
  private final boolean hasSums;
  private final double[] xtxDouble;
  private final float[] xtxFloat;
  private long tokens;
  private long sequences;
  private transient float[] gramScratch;

  private CalibrationStatistics(int channels, HessianStorage storage) {
    this(channels, storage, true);
  }

  private CalibrationStatistics(int channels, HessianStorage storage, boolean hasSums) {
    ValidationException.check(channels > 0, "Invalid channel count %d", channels);
    ValidationException.check(
        storage == HessianStorage.NONE || (long) channels * channels <= Integer.MAX_VALUE - 16,
        "Cannot keep X^T X for %d channels in one array",
        channels);
    this.channels = channels;
    this.storage = storage;
    this.sumSquares = new double[channels];
    this.sums = new double[channels];
    this.hasSums = hasSums;
    this.xtxDouble = storage == HessianStorage.DOUBLE ? new double[channels * channels] : null;
    this.xtxFloat = storage == HessianStorage.FLOAT ? new float[channels * channels] : null;
  }

  public static CalibrationStatistics create(int channels, HessianStorage storage) {
    return new CalibrationStatistics(channels, storage);
  }

  public int channels() {
    return channels;
  }

  public HessianStorage storage() {
    return storage;
  }

  public long tokens() {
    return tokens;
  }

  public long sequences() {
    return sequences;
  }

  public boolean hasHessian() {
    return storage != HessianStorage.NONE;
  }

  /**
   * Adds {@code tokenCount} rows of row-major {@code x} [tokens x channels] starting at
   * {@code offset}, which came from {@code sequenceCount} calibration sequences.
   */
  public void add(float[] x, int offset, int tokenCount, int sequenceCount, LinearAlgebra linalg) {
    ValidationException.check(
        offset >= 0 && offset + (long) tokenCount * channels <= x.length,
        "Cannot add %d tokens of %d channels: the input holds %d values",
        tokenCount,
        channels,
        x.length - offset);
    for (int t = 0; t < tokenCount; t++) {
      int row = offset + t * channels;
      for (int j = 0; j < channels; j++) {
        double value = x[row + j];
        sumSquares[j] += value * value;
        sums[j] += value;
      }
    }
    if (storage != HessianStorage.NONE) {
      if (gramScratch == null) {
        gramScratch = new float[channels * channels];
      }
      for (int start = 0; start < tokenCount; start += CHUNK_TOKENS) {
        int count = Math.min(CHUNK_TOKENS, tokenCount - start);
        linalg.gramLower(channels, count, x, offset + start * channels, gramScratch);
        addLower(gramScratch);
      }
    }
    tokens += tokenCount;
    sequences += sequenceCount;
  }

  private void addLower(float[] gram) {
    for (int i = 0; i < channels; i++) {
      int row = i * channels;
      if (xtxDouble != null) {
        for (int j = 0; j <= i; j++) {
          xtxDouble[row + j] += gram[row + j];
        }
      } else {
        for (int j = 0; j <= i; j++) {
          xtxFloat[row + j] += gram[row + j];
        }
      }
    }
  }

  /** Adds {@code other} into this accumulator and returns this. */
  public CalibrationStatistics merge(CalibrationStatistics other) {
    ValidationException.check(
        other.channels == channels && other.storage == storage,
        "Cannot merge statistics of %d channels (%s) into %d channels (%s)",
        other.channels,
        other.storage,
        channels,
        storage);
    ValidationException.check(
        other.hasSums == hasSums, "Cannot merge statistics of layout version 1 (no per-channel sums) with version 2 ones");
    for (int j = 0; j < channels; j++) {
      sumSquares[j] += other.sumSquares[j];
      sums[j] += other.sums[j];
    }
    if (xtxDouble != null) {
      for (int i = 0; i < xtxDouble.length; i++) {
        xtxDouble[i] += other.xtxDouble[i];
      }
    } else if (xtxFloat != null) {
      for (int i = 0; i < xtxFloat.length; i++) {
        xtxFloat[i] += other.xtxFloat[i];
      }
    }
    tokens += other.tokens;
    sequences += other.sequences;
    return this;
  }

  /** Wanda's scaler_row: sum over tokens of x_j^2, divided by the number of sequences. */
  public float[] scalerRow() {
    checkHasSequences();
    float[] scaler = new float[channels];
    for (int j = 0; j < channels; j++) {
      scaler[j] = (float) (sumSquares[j] / sequences);
    }
    return scaler;
  }

  public double[] sumSquares() {
    return sumSquares.clone();
  }

  /** Whether the per-channel sums are known (false only for statistics from a version 1 file). */
  public boolean hasSums() {
    return hasSums;
  }

  /** The per-channel sum of x over the tokens; {@code method} names who needs it for the error on version 1 files. */
  public double[] channelSums(String method) {
    ValidationException.check(
        hasSums,
        "Cannot use %s: these statistics were saved in version 1 of the layout, without per-channel sums; "
            + "calibrate again (or save the statistics again)",
        method);
    return sums.clone();
  }

  /** SparseGPT's H = (2 / sequences) X^T X, full symmetric, row-major. */
  public double[] hessian() {
    checkHasSequences();
    ValidationException.check(storage != HessianStorage.NONE, "Cannot build a Hessian: statistics were collected without X^T X");
    double scale = 2.0 / sequences;
    double[] h = fullXtx();
    for (int i = 0; i < h.length; i++) {
      h[i] *= scale;
    }
    return h;
  }

  private void checkHasSequences() {
    ValidationException.check(sequences > 0, "Cannot use calibration statistics: no calibration sequences were added");
  }

  /** The documented safetensors layout (see the class comment). */
  public byte[] toBytes() {
    List<TensorSpec> specs = new ArrayList<>();
    specs.add(new TensorSpec("sum_squares", DType.F64, channels));
    if (hasSums) {
      specs.add(new TensorSpec("sums", DType.F64, channels));
    }
    if (storage != HessianStorage.NONE) {
      specs.add(new TensorSpec("xtx", storage == HessianStorage.DOUBLE ? DType.F64 : DType.F32, channels, channels));
    }
    Map<String, String> metadata = new LinkedHashMap<>();
    metadata.put("format", "sparkprune-statistics");
    metadata.put("version", hasSums ? Integer.toString(VERSION) : "1");
    metadata.put("channels", Integer.toString(channels));
    metadata.put("tokens", Long.toString(tokens));
    metadata.put("sequences", Long.toString(sequences));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (SafetensorsWriter writer = SafetensorsWriter.create(out, specs, metadata)) {
      byte[] sums = doublesToBytes(sumSquares);
      writer.writeBytes(sums, 0, sums.length);
      if (hasSums) {
        byte[] channelSums = doublesToBytes(this.sums);
        writer.writeBytes(channelSums, 0, channelSums.length);
      }
      if (storage != HessianStorage.NONE) {
        double[] full = fullXtx();
        if (storage == HessianStorage.DOUBLE) {
          byte[] bytes = doublesToBytes(full);
          writer.writeBytes(bytes, 0, bytes.length);
        } else {
          float[] values = new float[full.length];
          for (int i = 0; i < full.length; i++) {
            values[i] = (float) full[i];
          }
          writer.writeFloats(values, 0, values.length);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  public static CalibrationStatistics fromBytes(String location, byte[] bytes) {
    try (SafetensorsReader reader = SafetensorsReader.open(new ByteArrayFile(location, bytes))) {
      Map<String, String> metadata = reader.metadata();
      String version = metadata.get("version");
      ValidationException.check(
          "sparkprune-statistics".equals(metadata.get("format")) && ("1".equals(version) || "2".equals(version)),
          "Invalid statistics file %s: not sparkprune statistics version 1 or 2 (version %s)",
          location,
          version);
      boolean hasSums = "2".equals(version);
      long channelCount = parseCount(location, metadata, "channels");
      ValidationException.check(
          channelCount > 0 && channelCount <= 46340, "Invalid statistics file %s: channels = %s", location, channelCount);
      int channels = (int) channelCount;
      TensorInfo sums = reader.tensor("sum_squares");
      ValidationException.check(
          sums.dtype() == DType.F64 && sums.numel() == channels, "Invalid statistics file %s: sum_squares is %s", location, sums);
      HessianStorage storage = HessianStorage.NONE;
      if (reader.contains("xtx")) {
        TensorInfo xtx = reader.tensor("xtx");
        ValidationException.check(
            xtx.numel() == (long) channels * channels && (xtx.dtype() == DType.F64 || xtx.dtype() == DType.F32),
            "Invalid statistics file %s: xtx is %s",
            location,
            xtx);
        storage = xtx.dtype() == DType.F64 ? HessianStorage.DOUBLE : HessianStorage.FLOAT;
      }
      TensorInfo channelSums = null;
      if (hasSums) {
        ValidationException.check(reader.contains("sums"), "Invalid statistics file %s: version 2 without sums", location);
        channelSums = reader.tensor("sums");
        ValidationException.check(
            channelSums.dtype() == DType.F64 && channelSums.numel() == channels,
            "Invalid statistics file %s: sums is %s",
            location,
            channelSums);
      }
      CalibrationStatistics statistics = new CalibrationStatistics(channels, storage, hasSums);
      statistics.tokens = parseCount(location, metadata, "tokens");
      statistics.sequences = parseCount(location, metadata, "sequences");
      bytesToDoubles(reader.readRawRows(sums, 0, channels), statistics.sumSquares);
      if (hasSums) {
        bytesToDoubles(reader.readRawRows(channelSums, 0, channels), statistics.sums);
      }
      if (storage == HessianStorage.DOUBLE) {
        bytesToDoubles(reader.readRawRows(reader.tensor("xtx"), 0, channels), statistics.xtxDouble);
      } else if (storage == HessianStorage.FLOAT) {
        reader.readRows(reader.tensor("xtx"), 0, channels, statistics.xtxFloat, 0);
      }
      return statistics;
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot read statistics " + location, e);
    }
  }

  /** X^T X itself, full symmetric, row-major (a copy): the Gram matrix least-squares refits solve with. */
  public double[] xtx() {
    ValidationException.check(storage != HessianStorage.NONE, "Cannot give X^T X: statistics were collected without it");
    return fullXtx();
  }

  /** X^T X as a full symmetric matrix, from the accumulated lower triangle. */
  private double[] fullXtx() {
    double[] full = new double[channels * channels];
    for (int i = 0; i < channels; i++) {
      for (int j = 0; j <= i; j++) {
        double value = xtxDouble != null ? xtxDouble[i * channels + j] : xtxFloat[i * channels + j];
        full[i * channels + j] = value;
        full[j * channels + i] = value;
      }
    }
    return full;
  }

  private static long parseCount(String location, Map<String, String> metadata, String key) {
    long value;
    try {
      value = Long.parseLong(metadata.getOrDefault(key, "-1"));
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid statistics file " + location + ": " + key + " is not a number");
    }
    ValidationException.check(value >= 0, "Invalid statistics file %s: %s = %s", location, key, value);
    return value;
  }

  private static byte[] doublesToBytes(double[] values) {
    ByteBuffer buffer = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    buffer.asDoubleBuffer().put(values);
    return buffer.array();
  }

  private static void bytesToDoubles(byte[] bytes, double[] values) {
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(values);
  }
}
