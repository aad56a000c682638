package dev.sparkprune.tensorio;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor of a safetensors file: name, dtype, shape and its byte range relative to the start
 * of the data section. Rows are the first dimension; a row holds the product of the others.
 */
public final class TensorInfo implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String name;
  private final DType dtype;
  private final long[] shape;
  private final long begin;
  private final long end;

  public TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {
    this.name = Objects.requireNonNull(name, "name is null");
    this.dtype = Objects.requireNonNull(dtype, "dtype is null");
    this.shape = shape.clone();
    this.begin = begin;
    this.end = end;
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

  public int rank() {
    return shape.length;
  }

  public long dim(int axis) {
    return shape[axis];
  }

  /** Byte offset of the first element, relative to the data section. */
  public long begin() {
    return begin;
  }

  /** Byte offset just past the last element, relative to the data section. */
  public long end() {
    return end;
  }

  public long byteLength() {
    return end - begin;
  }

  public long numel() {
    return numel(shape);
  }

  /** Rows along the first dimension; a scalar is one row. */
  public long rows() {
    return shape.length == 0 ? 1 : shape[0];
  }

  /** Elements per row: the product of all dimensions but the first. */
  public long rowLength() {
    long length = 1;
    for (int i = 1; i < shape.length; i++) {
      length *= shape[i];
    }
    return length;
  }

  public String shapeString() {
    StringBuilder out = new StringBuilder("[");
    for (int i = 0; i < shape.length; i++) {
      out.append(i == 0 ? "" : ", ").append(shape[i]);
    }
    return out.append(']').toString();
  }

  /** Product of the dimensions; throws on overflow, which only a hostile header can cause. */
  public static long numel(long[] shape) {
    long count = 1;
    for (long dim : shape) {
      count = Math.multiplyExact(count, dim);
    }
    return count;
  }

  @Override
  public boolean equals(Object other) {
    if (this == other) {
      return true;
    }
    if (!(other instanceof TensorInfo)) {
      return false;
    }
    TensorInfo that = (TensorInfo) other;
    return begin == that.begin
        && end == that.end
        && name.equals(that.name)
        && dtype == that.dtype
        && Arrays.equals(shape, that.shape);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end);
  }

  @Override
  public String toString() {
    return name + " " + dtype + shapeString() + " @[" + begin + ", " + end + ")";
  }
}
