package dev.sparkprune.tensorio.shrink;

import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.SourceFormat;
import dev.sparkprune.tensorio.archive.StoredTensor;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
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

  /**
   * The slices of every stored component of a logical tensor that keep first-dimension
   * {@code rows} (the experts of a fused [experts, ...] tensor; empty keeps all) under logical name
   * {@code target}: an MXFP4 tensor's blocks and scales lose the same experts, byte for byte. A
   * block-scaled FP8 weight is kept whole or not at all.
   */
  public static List<TensorSlice> keepRows(ArchiveTensor tensor, String target, int[] rows) {
    ValidationException.check(
        rows.length == 0 || tensor.storage() != ArchiveTensor.Storage.FP8_BLOCKS,
        "Cannot keep some rows of %s: it is stored with 128x128 FP8 block scales; keep or drop it whole", tensor.name());
    List<TensorSlice> slices = new ArrayList<>();
    for (StoredTensor component : tensor.components()) {
      slices.add(new TensorSlice(component.info(), SourceFormat.componentName(tensor, component, target), rows, new int[0]));
    }
    return slices;
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
