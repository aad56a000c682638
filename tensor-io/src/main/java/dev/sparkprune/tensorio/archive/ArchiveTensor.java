package dev.sparkprune.tensorio.archive;

import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * One logical tensor of a model archive, by the name and shape the model code uses, whatever
 * its storage: a plain stored tensor; a block-scaled FP8 weight ({@code x.weight} F8_E4M3 with
 * {@code x.weight_scale_inv}); or an MXFP4 fused expert tensor ({@code x_blocks} and
 * {@code x_scales}, read as {@code x} in transformers' dequantized [experts, in, out] layout).
 * {@link ArchiveReader} reads it as float, exactly dequantized.
 */
public final class ArchiveTensor implements Serializable {
  private static final long serialVersionUID = 1L;

  /** How a logical tensor is stored. */
  public enum Storage {
    PLAIN,
    /** F8_E4M3 codes and an F32 scale per 128x128 block ({@code weight_scale_inv}). */
    FP8_BLOCKS,
    /** E2M1 code pairs ({@code _blocks}) and an E8M0 exponent per 32 values ({@code _scales}). */
    MXFP4
  }

  private final String name;
  private final long[] shape;
  private final Storage storage;
  /** An array, not a List: Kryo rebuilds arrays, not the JDK's immutable lists (plans ship these). */
  private final StoredTensor[] components;

  private ArchiveTensor(String name, long[] shape, Storage storage, StoredTensor... components) {
    this.name = Objects.requireNonNull(name, "name is null");
    this.shape = shape.clone();
    this.storage = Objects.requireNonNull(storage, "storage is null");
    this.components = components.clone();
  }

  public static ArchiveTensor plain(StoredTensor tensor) {
    return new ArchiveTensor(tensor.name(), tensor.shape(), Storage.PLAIN, tensor);
  }

  /** A [rows, cols] F8_E4M3 weight and its [ceil(rows/128), ceil(cols/128)] scales. */
  static ArchiveTensor fp8Blocks(StoredTensor weight, StoredTensor scales) {
    return new ArchiveTensor(weight.name(), weight.shape(), Storage.FP8_BLOCKS, weight, scales);
  }

  /** {@code name}_blocks [E, out, G, 16] and _scales [E, out, G], read as [E, G x 32, out]. */
  static ArchiveTensor mxfp4(String name, StoredTensor blocks, StoredTensor scales) {
    long[] stored = blocks.shape();
    long[] logical = {stored[0], stored[2] * 32, stored[1]};
    return new ArchiveTensor(name, logical, Storage.MXFP4, blocks, scales);
  }

  public String name() {
    return name;
  }

  /**
   * The same logical tensor as stored in another file (a staged copy written with
   * {@link SourceFormat#specs}): each component found there by name, with the same dtype and
   * shape. {@code header} is that file's opened header, {@code shard} its name for readers.
   */
  public ArchiveTensor storedIn(String shard, SafetensorsReader header) {
    StoredTensor[] moved = new StoredTensor[components.length];
    for (int i = 0; i < components.length; i++) {
      StoredTensor component = components[i];
      long[] expected = component.shape();
      ValidationException.check(
          header.contains(component.name()), "Cannot read %s from %s: it lacks component '%s'", name, header.location(), component.name());
      TensorInfo info = header.tensor(component.name());
      ValidationException.check(
          info.dtype() == component.dtype() && Arrays.equals(info.shape(), expected),
          "Cannot read %s from %s: component '%s' is %s %s there, expected %s %s", name, header.location(), component.name(),
          info.dtype(), Arrays.toString(info.shape()), component.dtype(), Arrays.toString(expected));
      moved[i] = new StoredTensor(info, shard, header.dataStart());
    }
    return new ArchiveTensor(name, shape, storage, moved);
  }

  /** The logical shape: what reading it as float returns. */
  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  public long dim(int axis) {
    return shape[axis];
  }

  /** Parameters: logical elements, not stored bytes. */
  public long numel() {
    return TensorInfo.numel(shape);
  }

  /** Rows along the first dimension (experts of a fused expert tensor); a scalar is one row. */
  public long rows() {
    return shape.length == 0 ? 1 : shape[0];
  }

  /** Elements per row: the product of all dimensions but the first. */
  public long rowLength() {
    return shape.length == 0 ? 1 : numel() / Math.max(1, shape[0]);
  }

  public Storage storage() {
    return storage;
  }

  public boolean isQuantized() {
    return storage != Storage.PLAIN;
  }

  /** The stored tensors in writing order: the data first, then its scales. */
  public List<StoredTensor> components() {
    return List.of(components);
  }

  /** The stored data: the tensor itself, the FP8 codes or the MXFP4 blocks. */
  public StoredTensor data() {
    return components[0];
  }

  public Optional<StoredTensor> scales() {
    return components.length > 1 ? Optional.of(components[1]) : Optional.empty();
  }

  /** The dtype of the stored data: F8_E4M3 for FP8 weights, U8 for MXFP4 blocks. */
  public DType dtype() {
    return data().dtype();
  }

  /** The storage in words, for reports: the dtype, or the quantized format. */
  public String storageLabel() {
    return switch (storage) {
      case PLAIN -> dtype().name();
      case FP8_BLOCKS -> "F8_E4M3 (128x128 block scales)";
      case MXFP4 -> "MXFP4 (E2M1, E8M0 per 32)";
    };
  }

  /** Bytes of all stored components. */
  public long storedBytes() {
    long bytes = 0;
    for (StoredTensor component : components) {
      bytes += component.byteLength();
    }
    return bytes;
  }

  /**
   * The logical name and shape with the data component's dtype and byte range, as architectures
   * check them; a quantized tensor's bytes are those of {@link #components()}.
   */
  public TensorInfo info() {
    TensorInfo data = data().info();
    return storage == Storage.PLAIN ? data : new TensorInfo(name, data.dtype(), shape, data.begin(), data.end());
  }

  /** File name of the data component's shard, relative to the archive directory. */
  public String shard() {
    return data().shard();
  }

  /** Absolute offset of the data component's first byte in its shard. */
  public long fileBegin() {
    return data().fileBegin();
  }

  /** Absolute offset just past the data component's last byte in its shard. */
  public long fileEnd() {
    return data().fileEnd();
  }

  @Override
  public String toString() {
    return storage == Storage.PLAIN ? data().toString() : name + " " + storageLabel() + " from " + components();
  }
}
