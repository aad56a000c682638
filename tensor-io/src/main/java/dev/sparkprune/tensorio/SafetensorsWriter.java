package dev.sparkprune.tensorio;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Streams a safetensors file: the header with every offset is written first, then the tensors'
 * data in the declared order, so no tensor need be held in memory beyond the caller's chunk.
 */
public final class SafetensorsWriter implements Closeable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int ENCODE_CHUNK_ELEMENTS = 1 << 18;

  private final OutputStream out;
  private final List<TensorSpec> specs;
  private final byte[] encodeBuffer = new byte[ENCODE_CHUNK_ELEMENTS * 8];
  private int current;
  private long writtenInCurrent;
  private boolean closed;

  private SafetensorsWriter(OutputStream out, List<TensorSpec> specs) {
    this.out = out;
    this.specs = specs;
  }

  /** Writes the header to {@code out} and returns a writer expecting the tensors in order. */
  public static SafetensorsWriter create(OutputStream out, List<TensorSpec> specs, Map<String, String> metadata)
      throws IOException {
    List<TensorSpec> ordered = List.copyOf(specs);
    out.write(header(ordered, metadata));
    SafetensorsWriter writer = new SafetensorsWriter(out, ordered);
    writer.skipEmptyTensors();
    return writer;
  }

  /** The 8-byte length and the JSON header, padded with spaces so data starts 8-byte aligned. */
  static byte[] header(List<TensorSpec> specs, Map<String, String> metadata) throws IOException {
    ObjectNode root = JSON.createObjectNode();
    if (!metadata.isEmpty()) {
      ObjectNode meta = root.putObject(SafetensorsHeader.METADATA_KEY);
      metadata.forEach(meta::put);
    }
    Set<String> names = new HashSet<>();
    long offset = 0;
    for (TensorSpec spec : specs) {
      if (!names.add(spec.name()) || SafetensorsHeader.METADATA_KEY.equals(spec.name())) {
        throw new IllegalArgumentException("Cannot write safetensors: duplicate or reserved tensor name '" + spec.name() + "'");
      }
      ObjectNode entry = root.putObject(spec.name());
      entry.put("dtype", spec.dtype().name());
      ArrayNode shape = entry.putArray("shape");
      for (long dim : spec.shape()) {
        shape.add(dim);
      }
      long end = offset + spec.byteLength();
      entry.putArray("data_offsets").add(offset).add(end);
      offset = end;
    }
    byte[] json = JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
    int padded = (json.length + 7) & ~7;
    byte[] bytes = new byte[8 + padded];
    TensorCodec.writeLongLE(bytes, 0, padded);
    System.arraycopy(json, 0, bytes, 8, json.length);
    Arrays.fill(bytes, 8 + json.length, bytes.length, (byte) ' ');
    return bytes;
  }

  /** The tensor the next bytes belong to. */
  public TensorSpec currentTensor() {
    if (current >= specs.size()) {
      throw new IllegalStateException("All " + specs.size() + " tensors are already written");
    }
    return specs.get(current);
  }

  /** Appends raw little-endian bytes to the current tensor, moving on when it is complete. */
  public void writeBytes(byte[] source, int offset, int length) throws IOException {
    int position = offset;
    int remaining = length;
    while (remaining > 0) {
      TensorSpec spec = currentTensor();
      int count = (int) Math.min(remaining, spec.byteLength() - writtenInCurrent);
      out.write(source, position, count);
      advance(count);
      position += count;
      remaining -= count;
    }
  }

  /** Encodes floats into the current tensor's dtype; a call may span several tensors. */
  public void writeFloats(float[] source, int offset, int length) throws IOException {
    int position = offset;
    int remaining = length;
    while (remaining > 0) {
      TensorSpec spec = currentTensor();
      int elementSize = spec.dtype().byteSize();
      long leftInTensor = (spec.byteLength() - writtenInCurrent) / elementSize;
      int count = (int) Math.min(Math.min(remaining, leftInTensor), ENCODE_CHUNK_ELEMENTS);
      TensorCodec.encode(spec.dtype(), source, position, encodeBuffer, 0, count);
      out.write(encodeBuffer, 0, count * elementSize);
      advance((long) count * elementSize);
      position += count;
      remaining -= count;
    }
  }

  private void advance(long bytes) {
    writtenInCurrent += bytes;
    if (writtenInCurrent == specs.get(current).byteLength()) {
      current++;
      writtenInCurrent = 0;
      skipEmptyTensors();
    }
  }

  private void skipEmptyTensors() {
    while (current < specs.size() && specs.get(current).byteLength() == 0) {
      current++;
    }
  }

  /**
   * The tensor data as a stream, for copying bytes from another file: each write goes through
   * {@link #writeBytes}, so every tensor still gets exactly its bytes. Closing it does nothing.
   */
  public OutputStream dataStream() {
    return new OutputStream() {
      @Override
      public void write(int b) throws IOException {
        writeBytes(new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] bytes, int offset, int length) throws IOException {
        writeBytes(bytes, offset, length);
      }
    };
  }

  /** Names of tensors not completely written yet. */
  public List<String> missingTensors() {
    List<String> missing = new ArrayList<>();
    for (int i = current; i < specs.size(); i++) {
      missing.add(specs.get(i).name());
    }
    return missing;
  }

  /** Closes the stream; fails if any tensor is incomplete, so a short file is never taken as done. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    out.close();
    if (current < specs.size()) {
      throw new IllegalStateException("Safetensors file closed before tensors were complete: " + missingTensors());
    }
  }
}
