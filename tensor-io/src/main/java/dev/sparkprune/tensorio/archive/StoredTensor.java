package dev.sparkprune.tensorio.archive;

import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.TensorInfo;
import java.io.Serializable;
import java.util.Objects;

/**
 * One tensor as a safetensors header stores it: its shard file and absolute byte range there. A
 * logical {@link ArchiveTensor} is one stored tensor, or a quantized weight and its scales.
 */
public final class StoredTensor implements Serializable {
  private static final long serialVersionUID = 1L;

  private final TensorInfo info;
  private final String shard;
  private final long dataStart;

  public StoredTensor(TensorInfo info, String shard, long dataStart) {
    this.info = Objects.requireNonNull(info, "info is null");
    this.shard = Objects.requireNonNull(shard, "shard is null");
    this.dataStart = dataStart;
  }

  public TensorInfo info() {
    return info;
  }

  public String name() {
    return info.name();
  }

  public DType dtype() {
    return info.dtype();
  }

  public long[] shape() {
    return info.shape();
  }

  public long numel() {
    return info.numel();
  }

  public long byteLength() {
    return info.byteLength();
  }

  /** File name of the shard, relative to the archive directory. */
  public String shard() {
    return shard;
  }

  /** Absolute offset of the first byte in the shard file. */
  public long fileBegin() {
    return dataStart + info.begin();
  }

  /** Absolute offset just past the last byte in the shard file. */
  public long fileEnd() {
    return dataStart + info.end();
  }

  @Override
  public String toString() {
    return info + " in " + shard;
  }
}
