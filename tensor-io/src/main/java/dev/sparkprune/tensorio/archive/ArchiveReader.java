package dev.sparkprune.tensorio.archive;

import dev.sparkprune.tensorio.MiniFloats;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.TensorCodec;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.quant.Fp8Blocks;
import dev.sparkprune.tensorio.quant.Mxfp4Blocks;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Reads logical tensors of an archive as float, whatever their storage, with positioned reads
 * of only the bytes asked for; shards are opened on first use and kept until {@link #close()}.
 * Quantized tensors come back exactly dequantized: MXFP4 values are exact in float, FP8 values
 * are the float32 product code x scale. Rows are the first dimension, so the rows of a fused
 * expert tensor [experts, ...] are its experts: {@code readRows(name, e, 1)} reads expert e alone.
 * Scales are checked as they are read: a NaN, infinite or negative scale fails with one line.
 */
public final class ArchiveReader implements Closeable {
  private static final long MAX_ARRAY_LENGTH = Integer.MAX_VALUE - 16;

  private final FileIO io;
  private final String location;
  private final Optional<ModelArchive> archive;
  private final Map<String, SafetensorsReader> readers = new HashMap<>();

  private ArchiveReader(FileIO io, String location, Optional<ModelArchive> archive) {
    this.io = Objects.requireNonNull(io, "io is null");
    this.location = Objects.requireNonNull(location, "location is null");
    this.archive = archive;
  }

  public ArchiveReader(ModelArchive archive) {
    this(archive.io(), archive.location(), Optional.of(archive));
  }

  /**
   * A reader for tasks that hold {@link ArchiveTensor}s from the plan but not the opened archive:
   * it opens only the shards it reads, and cannot look tensors up by name.
   */
  public static ArchiveReader at(FileIO io, String location) {
    return new ArchiveReader(io, location, Optional.empty());
  }

  /** The logical tensor named {@code name}; fails with one line where the archive lacks it. */
  public ArchiveTensor tensor(String name) {
    ModelArchive opened = archive.orElseThrow(() -> new IllegalStateException("This reader has no archive to look up '" + name + "' in"));
    return opened.tensor(name);
  }

  /** The whole tensor as float in its logical shape, row-major. */
  public float[] readFloats(String name) throws IOException {
    return readFloats(tensor(name));
  }

  public float[] readFloats(ArchiveTensor tensor) throws IOException {
    ValidationException.check(
        tensor.rows() <= Integer.MAX_VALUE, "Cannot read tensor '%s' in one piece: %d rows; read row ranges", tensor.name(), tensor.rows());
    return readRows(tensor, 0, (int) tensor.rows());
  }

  /** Rows [rowStart, rowStart + rowCount) of the first dimension as float: experts of a fused tensor. */
  public float[] readRows(String name, long rowStart, int rowCount) throws IOException {
    return readRows(tensor(name), rowStart, rowCount);
  }

  public float[] readRows(ArchiveTensor tensor, long rowStart, int rowCount) throws IOException {
    checkRows(tensor, rowStart, rowCount);
    long elements = rowCount * tensor.rowLength();
    ValidationException.check(
        elements <= MAX_ARRAY_LENGTH,
        "Cannot read %d rows of tensor '%s' into one array (%d values); read fewer rows at a time",
        rowCount, tensor.name(), elements);
    float[] values = new float[(int) elements];
    readRows(tensor, rowStart, rowCount, values, 0);
    return values;
  }

  /** Decodes rows into {@code destination} at {@code offset}, a bounded piece at a time. */
  public void readRows(ArchiveTensor tensor, long rowStart, int rowCount, float[] destination, int offset) throws IOException {
    checkRows(tensor, rowStart, rowCount);
    ValidationException.check(
        offset >= 0 && offset + rowCount * tensor.rowLength() <= destination.length,
        "Cannot read %d rows of tensor '%s' into %d floats at offset %d", rowCount, tensor.name(), destination.length, offset);
    switch (tensor.storage()) {
      case PLAIN -> reader(tensor.data()).readRows(tensor.data().info(), rowStart, rowCount, destination, offset);
      case FP8_BLOCKS -> readFp8Rows(tensor, rowStart, rowCount, destination, offset);
      case MXFP4 -> readMxfp4Experts(tensor, rowStart, rowCount, destination, offset);
      default -> throw new IllegalStateException("Unknown storage " + tensor.storage());
    }
  }

  /** One 128-row band of codes and its row of scales at a time. */
  private void readFp8Rows(ArchiveTensor tensor, long rowStart, int rowCount, float[] destination, int offset) throws IOException {
    StoredTensor codes = tensor.data();
    StoredTensor scales = tensor.scales().orElseThrow();
    int cols = (int) tensor.dim(1);
    long end = rowStart + rowCount;
    for (long row = rowStart; row < end; ) {
      long bandEnd = Math.min(end, (row / Fp8Blocks.BLOCK + 1) * Fp8Blocks.BLOCK);
      int count = (int) (bandEnd - row);
      byte[] raw = reader(codes).readRawRows(codes.info(), row, count);
      float[] scaleRow = fp8ScaleRow(scales, row / Fp8Blocks.BLOCK);
      Fp8Blocks.decodeRows(raw, row, count, cols, scaleRow, destination, offset + (int) ((row - rowStart) * cols));
      row = bandEnd;
    }
  }

  private float[] fp8ScaleRow(StoredTensor scales, long scaleRow) throws IOException {
    int width = (int) scales.info().rowLength();
    float[] values = new float[width];
    byte[] raw = reader(scales).readRawRows(scales.info(), scaleRow, 1);
    TensorCodec.decode(scales.dtype(), raw, 0, values, 0, width);
    for (int block = 0; block < width; block++) {
      float scale = values[block];
      ValidationException.check(
          Float.isFinite(scale) && scale >= 0,
          "Invalid model archive %s: scale tensor '%s' holds %s at [%d, %d]; block scales must be finite and non-negative",
          location, scales.name(), scale, scaleRow, block);
    }
    return values;
  }

  /** One expert's blocks and scales at a time, into transformers' [in, out] layout per expert. */
  private void readMxfp4Experts(ArchiveTensor tensor, long rowStart, int rowCount, float[] destination, int offset) throws IOException {
    StoredTensor blocks = tensor.data();
    StoredTensor scales = tensor.scales().orElseThrow();
    int in = (int) tensor.dim(1);
    int out = (int) tensor.dim(2);
    for (int e = 0; e < rowCount; e++) {
      long expert = rowStart + e;
      byte[] codes = reader(blocks).readRawRows(blocks.info(), expert, 1);
      byte[] exponents = reader(scales).readRawRows(scales.info(), expert, 1);
      checkMxScales(scales, expert, exponents, in / Mxfp4Blocks.GROUP);
      Mxfp4Blocks.decodeInByOut(codes, 0, exponents, 0, out, in, destination, offset + e * in * out);
    }
  }

  private void checkMxScales(StoredTensor scales, long expert, byte[] exponents, int groups) {
    for (int i = 0; i < exponents.length; i++) {
      if ((exponents[i] & 0xFF) == MiniFloats.E8M0_NAN) {
        throw new ValidationException(String.format(
            "Invalid model archive %s: MXFP4 scales '%s' hold the NaN exponent 0xFF at [%d, %d, %d]",
            location, scales.name(), expert, i / groups, i % groups));
      }
    }
  }

  /** Raw stored bytes of rows [rowStart, rowStart + rowCount) of one component, for copying or masking. */
  public byte[] readStoredRows(StoredTensor tensor, long rowStart, int rowCount) throws IOException {
    return reader(tensor).readRawRows(tensor.info(), rowStart, rowCount);
  }

  /** Copies one stored component's bytes unchanged, in bounded chunks. */
  public void copyStored(StoredTensor tensor, OutputStream out) throws IOException {
    reader(tensor).copyRaw(tensor.info(), out);
  }

  /** Copies every stored component of a logical tensor unchanged, data first, then scales. */
  public void copyStored(ArchiveTensor tensor, OutputStream out) throws IOException {
    for (StoredTensor component : tensor.components()) {
      copyStored(component, out);
    }
  }

  private SafetensorsReader reader(StoredTensor tensor) throws IOException {
    SafetensorsReader reader = readers.get(tensor.shard());
    if (reader == null) {
      reader = SafetensorsReader.open(io.newInputFile(io.resolve(location, tensor.shard())));
      readers.put(tensor.shard(), reader);
    }
    return reader;
  }

  private static void checkRows(ArchiveTensor tensor, long rowStart, int rowCount) {
    ValidationException.check(
        rowStart >= 0 && rowCount >= 0 && rowStart + rowCount <= tensor.rows(),
        "Invalid row range [%d, %d) for tensor '%s' with %d rows", rowStart, rowStart + rowCount, tensor.name(), tensor.rows());
  }

  @Override
  public void close() throws IOException {
    IOException failure = null;
    for (SafetensorsReader reader : readers.values()) {
      try {
        reader.close();
      } catch (IOException e) {
        failure = failure == null ? e : failure;
      }
    }
    readers.clear();
    if (failure != null) {
      throw failure;
    }
  }
}
