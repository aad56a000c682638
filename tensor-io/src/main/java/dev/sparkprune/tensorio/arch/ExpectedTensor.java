package dev.sparkprune.tensorio.arch;

import java.util.Objects;

/** A tensor an architecture expects, with its stored shape; optional ones may be absent (tied heads). */
public final class ExpectedTensor {
  private final String name;
  private final TensorRole role;
  private final long[] shape;
  private final boolean required;

  ExpectedTensor(String name, TensorRole role, long[] shape, boolean required) {
    this.name = Objects.requireNonNull(name, "name is null");
    this.role = Objects.requireNonNull(role, "role is null");
    this.shape = shape.clone();
    this.required = required;
  }

  public String name() {
    return name;
  }

  public TensorRole role() {
    return role;
  }

  public long[] shape() {
    return shape.clone();
  }

  public boolean required() {
    return required;
  }
}
