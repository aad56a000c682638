package dev.sparkprune.tensorio;

import dev.sparkprune.tensorio.io.InputFile;
import dev.sparkprune.tensorio.io.SeekableInput;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Reads tensors, or row ranges of them, from one safetensors file with positioned reads. Opening
 * reads only the 8-byte length and the header; tensor data is read on request.
 */
public final class SafetensorsReader implements Closeable {
  /**
   * Headers above this are refused before anything is read. Real headers are a few hundred KB (a
   * 128-expert, 48-layer MoE saved in one file would be about 3 MB); a hostile one near the
   * format's own 100 MB limit describes millions of tensors, gigabytes to hold however it is parsed.
   */
  public static final long MAX_HEADER_BYTES = 16L << 20;
  /** The header is parsed from positioned reads of this size, never held whole. */
  private static final int HEADER_READ_BYTES = 64 << 10;

  private static final int COPY_CHUNK_BYTES = 8 << 20;
  private static final int MAX_ARRAY_LENGTH = Integer.MAX_VALUE - 16;

  private final String location;
  private final long fileLength;
  private final long dataStart;
  private final SafetensorsHeader header;
  private final SeekableInput input;

  private SafetensorsReader(String location, long fileLength, long dataStart, SafetensorsHeader header, SeekableInput input) {
    this.location = location;
    this.fileLength = fileLength;
    this.dataStart = dataStart;
    this.header = header;
    this.input = input;
  }

  public static SafetensorsReader open(InputFile file) throws IOException {
    String location = file.location();
    long fileLength = file.length();
    SeekableInput input = file.open();
    try {
      ValidationException.check(
          fileLength >= 8, "Invalid safetensors file %s: %d bytes is too short for the 8-byte header length", location, fileLength);
      byte[] prefix = new byte[8];
      input.readFully(0, prefix, 0, 8);
      long headerLength = TensorCodec.readLongLE(prefix, 0);
      ValidationException.check(
          headerLength >= 0 && headerLength <= MAX_HEADER_BYTES,
          "Invalid safetensors file %s: header length %s is over the %d-byte limit (real headers are a few hundred KB)",
          location,
          Long.toUnsignedString(headerLength),
          MAX_HEADER_BYTES);
      ValidationException.check(
          headerLength <= fileLength - 8,
          "Invalid safetensors file %s: header length %d runs past the end of the file (%d bytes); the file may be truncated",
          location,
          headerLength,
          fileLength);
      long dataStart = 8 + headerLength;
      SafetensorsHeader header = SafetensorsHeader.parse(location, new HeaderStream(input, headerLength), fileLength - dataStart);
      return new SafetensorsReader(location, fileLength, dataStart, header, input);
    } catch (RuntimeException | IOException e) {
      input.close();
      throw e;
    }
  }

  public String location() {
    return location;
  }

  public long fileLength() {
    return fileLength;
  }

  /** Absolute file offset of the data section. */
  public long dataStart() {
    return dataStart;
  }

  /** Tensors in file order. */
  public List<TensorInfo> tensors() {
    return header.tensors();
  }

  public Map<String, String> metadata() {
    return header.metadata();
  }

  public boolean contains(String name) {
    return header.byName().containsKey(name);
  }

  public TensorInfo tensor(String name) {
    TensorInfo tensor = header.byName().get(name);
    ValidationException.check(tensor != null, "Cannot find tensor '%s' in %s", name, location);
    return tensor;
  }

  /** The whole tensor decoded to float. */
  public float[] readFloats(String name) throws IOException {
    TensorInfo tensor = tensor(name);
    return readRows(tensor, 0, checkedRows(tensor, tensor.rows()));
  }

  /** Rows {@code [rowStart, rowStart + rowCount)} of a tensor, decoded to float, row-major. */
  public float[] readRows(TensorInfo tensor, long rowStart, int rowCount) throws IOException {
    checkRowRange(tensor, rowStart, rowCount);
    long elements = (long) rowCount * tensor.rowLength();
    ValidationException.check(
        elements <= MAX_ARRAY_LENGTH,
        "Cannot read %d rows of tensor '%s' in %s into one array (%d elements); read fewer rows at a time",
        rowCount,
        tensor.name(),
        location,
        elements);
    float[] values = new float[(int) elements];
    readRows(tensor, rowStart, rowCount, values, 0);
    return values;
  }

  /** Decodes rows into {@code destination} at {@code offset}, reading in bounded chunks. */
  public void readRows(TensorInfo tensor, long rowStart, int rowCount, float[] destination, int offset) throws IOException {
    checkRowRange(tensor, rowStart, rowCount);
    ValidationException.check(
        tensor.dtype().isFloatConvertible(), "Cannot decode tensor '%s' of dtype %s to float", tensor.name(), tensor.dtype());
    scalesOf(tensor).ifPresent(scales -> {
      throw new ValidationException(String.format(
          "Cannot decode tensor '%s' alone: it is stored quantized with scales '%s'; read it by its logical name through ArchiveReader",
          tensor.name(), scales));
    });
    int elementSize = tensor.dtype().byteSize();
    long elements = (long) rowCount * tensor.rowLength();
    int chunkElements = COPY_CHUNK_BYTES / elementSize;
    byte[] buffer = new byte[(int) Math.min((long) chunkElements * elementSize, elements * elementSize)];
    long position = dataStart + tensor.begin() + rowStart * tensor.rowLength() * elementSize;
    for (long done = 0; done < elements; ) {
      int count = (int) Math.min(chunkElements, elements - done);
      input.readFully(position, buffer, 0, count * elementSize);
      TensorCodec.decode(tensor.dtype(), buffer, 0, destination, offset + (int) done, count);
      position += (long) count * elementSize;
      done += count;
    }
  }

  /** Raw little-endian bytes of rows {@code [rowStart, rowStart + rowCount)}. */
  public byte[] readRawRows(TensorInfo tensor, long rowStart, int rowCount) throws IOException {
    checkRowRange(tensor, rowStart, rowCount);
    long rowBytes = tensor.rowLength() * tensor.dtype().byteSize();
    long length = rowBytes * rowCount;
    ValidationException.check(
        length <= MAX_ARRAY_LENGTH, "Cannot read %d bytes of tensor '%s' into one array; read fewer rows", length, tensor.name());
    byte[] bytes = new byte[(int) length];
    input.readFully(dataStart + tensor.begin() + rowStart * rowBytes, bytes, 0, bytes.length);
    return bytes;
  }

  /** Copies a tensor's bytes unchanged to {@code out} in bounded chunks. */
  public void copyRaw(TensorInfo tensor, OutputStream out) throws IOException {
    byte[] buffer = new byte[(int) Math.min(COPY_CHUNK_BYTES, Math.max(1, tensor.byteLength()))];
    long position = dataStart + tensor.begin();
    for (long remaining = tensor.byteLength(); remaining > 0; ) {
      int count = (int) Math.min(buffer.length, remaining);
      input.readFully(position, buffer, 0, count);
      out.write(buffer, 0, count);
      position += count;
      remaining -= count;
    }
  }

  /**
   * The scale tensor beside a quantized data tensor in this file (an F8 weight's
   * {@code _scale_inv}, MXFP4 {@code _blocks}' {@code _scales}): its codes are not its values.
   */
  private Optional<String> scalesOf(TensorInfo tensor) {
    String name = tensor.name();
    if (tensor.dtype() == DType.F8_E4M3 || tensor.dtype() == DType.F8_E5M2) {
      return contains(name + "_scale_inv") ? Optional.of(name + "_scale_inv") : Optional.empty();
    }
    if (tensor.dtype() == DType.U8 && name.endsWith("_blocks")) {
      String scales = name.substring(0, name.length() - "_blocks".length()) + "_scales";
      return contains(scales) ? Optional.of(scales) : Optional.empty();
    }
    return Optional.empty();
  }

  private int checkedRows(TensorInfo tensor, long rows) {
    ValidationException.check(
        rows <= Integer.MAX_VALUE, "Cannot read tensor '%s' in one piece: %d rows; read row ranges", tensor.name(), rows);
    return (int) rows;
  }

  private void checkRowRange(TensorInfo tensor, long rowStart, int rowCount) {
    ValidationException.check(
        header.byName().get(tensor.name()) == tensor || tensor.equals(header.byName().get(tensor.name())),
        "Tensor '%s' does not belong to %s",
        tensor.name(),
        location);
    ValidationException.check(
        rowStart >= 0 && rowCount >= 0 && rowStart + rowCount <= tensor.rows(),
        "Invalid row range [%d, %d) for tensor '%s' with %d rows",
        rowStart,
        rowStart + rowCount,
        tensor.name(),
        tensor.rows());
  }

  @Override
  public void close() throws IOException {
    input.close();
  }

  /** The header's bytes as a stream of positioned reads, {@link #HEADER_READ_BYTES} at a time. */
  private static final class HeaderStream extends java.io.InputStream {
    private final SeekableInput input;
    private final long end;
    private final byte[] buffer;
    private long bufferStart = 8;
    private int bufferLength;
    private int at;

    HeaderStream(SeekableInput input, long headerLength) {
      this.input = input;
      this.end = 8 + headerLength;
      this.buffer = new byte[(int) Math.min(HEADER_READ_BYTES, Math.max(1, headerLength))];
    }

    @Override
    public int read() throws IOException {
      if (!fill()) {
        return -1;
      }
      return buffer[at++] & 0xFF;
    }

    @Override
    public int read(byte[] out, int offset, int length) throws IOException {
      if (length == 0) {
        return 0;
      }
      if (!fill()) {
        return -1;
      }
      int count = Math.min(length, bufferLength - at);
      System.arraycopy(buffer, at, out, offset, count);
      at += count;
      return count;
    }

    /** Whether bytes are available, reading the next block when the buffer is spent. */
    private boolean fill() throws IOException {
      if (at < bufferLength) {
        return true;
      }
      long next = bufferStart + bufferLength;
      if (next >= end) {
        return false;
      }
      bufferLength = (int) Math.min(buffer.length, end - next);
      input.readFully(next, buffer, 0, bufferLength);
      bufferStart = next;
      at = 0;
      return true;
    }
  }
}
