package dev.sparkprune.tensorio.shrink;

import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import java.io.Serializable;
import java.util.Objects;

/**
 * How one source tensor appears in the shrunk archive: under {@code target}, with the given rows
 * (first dimension) and columns (last dimension of a 2-D tensor) in ascending order; an empty
 * array keeps every row or column. Bytes are copied unchanged, never decoded.
 */
public record TensorSlice(TensorInfo source, String target, int[] rows, int[] columns) implements Serializable {
  public TensorSlice {
    Objects.requireNonNull(source, "source is null");
    Objects.requireNonNull(target, "target is null");
    rows = rows.clone();
    columns = columns.clone();
  }

  public boolean isWhole() {
    return rows.length == 0 && columns.length == 0;
  }

  /** The shape in the shrunk archive. */
  public long[] shape() {
    long[] shape = source.shape();
    if (rows.length > 0) {
      shape[0] = rows.length;
    }
    if (columns.length > 0) {
      shape[shape.length - 1] = columns.length;
    }
    return shape;
  }

  public TensorSpec spec() {
    return new TensorSpec(target, source.dtype(), shape());
  }

  public long byteLength() {
    return TensorInfo.numel(shape()) * source.dtype().byteSize();
  }
}
