package dev.sparkprune.tensorio;

import java.util.Objects;

/** A tensor to be written: name, dtype and shape, before it has a byte range. */
public final class TensorSpec {
  private final String name;
  private final DType dtype;
  private final long[] shape;

  public TensorSpec(String name, DType dtype, long... shape) {
    this.name = Objects.requireNonNull(name, "name is null");
    this.dtype = Objects.requireNonNull(dtype, "dtype is null");
    this.shape = shape.clone();
    for (long dim : shape) {
      if (dim < 0) {
        throw new IllegalArgumentException("Invalid shape for " + name + ": negative dimension " + dim);
      }
    }
  }

  public static TensorSpec of(TensorInfo tensor) {
    return new TensorSpec(tensor.name(), tensor.dtype(), tensor.shape());
  }

  public String name() {
    return name;
  }

  public DType dtype() {
    return dtype;
  }

  public long[] shape() {
    return shape.clone();
  }

  public long numel() {
    return TensorInfo.numel(shape);
  }

  public long byteLength() {
    return Math.multiplyExact(numel(), dtype.byteSize());
  }
}
