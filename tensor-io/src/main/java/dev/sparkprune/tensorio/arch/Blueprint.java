package dev.sparkprune.tensorio.arch;

import java.util.ArrayList;
import java.util.List;

/** Every tensor an architecture expects for one config, and which of them are prunable linears. */
public final class Blueprint {
  private final String modelType;
  private final int blockCount;
  private final List<ExpectedTensor> tensors;
  private final List<Linear> linears;

  private Blueprint(String modelType, int blockCount, List<ExpectedTensor> tensors, List<Linear> linears) {
    this.modelType = modelType;
    this.blockCount = blockCount;
    this.tensors = List.copyOf(tensors);
    this.linears = List.copyOf(linears);
  }

  public static Builder builder(String modelType, int blockCount) {
    return new Builder(modelType, blockCount);
  }

  public String modelType() {
    return modelType;
  }

  public int blockCount() {
    return blockCount;
  }

  /** Expected tensors in checkpoint order: embeddings, then block by block, then the head. */
  public List<ExpectedTensor> tensors() {
    return tensors;
  }

  public List<Linear> linears() {
    return linears;
  }

  public static final class Builder {
    private final String modelType;
    private final int blockCount;
    private final List<ExpectedTensor> tensors = new ArrayList<>();
    private final List<Linear> linears = new ArrayList<>();

    private Builder(String modelType, int blockCount) {
      this.modelType = modelType;
      this.blockCount = blockCount;
    }

    public Builder tensor(String name, TensorRole role, long... shape) {
      tensors.add(new ExpectedTensor(name, role, shape, true));
      return this;
    }

    public Builder optionalTensor(String name, TensorRole role, long... shape) {
      tensors.add(new ExpectedTensor(name, role, shape, false));
      return this;
    }

    /** A weight and its bias as LayerNorm-style pairs: {@code name.weight}, {@code name.bias}. */
    public Builder norm(String name, long width, boolean withBias) {
      tensor(name + ".weight", TensorRole.NORM, width);
      if (withBias) {
        tensor(name + ".bias", TensorRole.NORM, width);
      }
      return this;
    }

    /**
     * A prunable linear {@code blockPrefix + name + ".weight"} in [out, in] terms, with an optional
     * {@code .bias} of length out.
     */
    public Builder linear(
        int block, String blockPrefix, String name, long out, long in, boolean storedTransposed, String inputGroup, boolean withBias) {
      String base = blockPrefix + name;
      String biasName = withBias ? base + ".bias" : null;
      Linear linear = new Linear(block, name, base + ".weight", out, in, storedTransposed, inputGroup, biasName);
      linears.add(linear);
      tensors.add(new ExpectedTensor(linear.tensorName(), TensorRole.LINEAR, linear.storedShape(), true));
      if (withBias) {
        tensors.add(new ExpectedTensor(biasName, TensorRole.BIAS, new long[] {out}, true));
      }
      return this;
    }

    /** A bias-free linear of a routed or shared expert, in [out, in] orientation. */
    public Builder expertLinear(int block, String blockPrefix, String name, long out, long in, String inputGroup, Expert expert) {
      String base = blockPrefix + name;
      Linear linear = new Linear(block, name, base + ".weight", out, in, false, inputGroup, null, expert);
      linears.add(linear);
      tensors.add(new ExpectedTensor(linear.tensorName(), TensorRole.LINEAR, linear.storedShape(), true));
      return this;
    }

    /**
     * A routed expert's linear stored as a slice of a fused expert tensor, already expected whole
     * ({@link FusedExpertSlice}); named {@code blockPrefix + name + ".weight"} alone.
     */
    public Builder fusedExpertLinear(
        int block, String blockPrefix, String name, String inputGroup, Expert expert, FusedExpertSlice slice, long out, long in) {
      linears.add(new Linear(block, name, blockPrefix + name + ".weight", out, in, inputGroup, expert, slice));
      return this;
    }

    /**
     * Adds every tensor of {@code layer} (a blueprint of one decoder layer) under {@code role},
     * keeping which are required; none of its linears becomes prunable. How a multi-token
     * prediction layer, shaped as a decoder layer, is known without being run or pruned.
     */
    public Builder tensorsOf(Blueprint layer, TensorRole role) {
      for (ExpectedTensor tensor : layer.tensors()) {
        tensors.add(new ExpectedTensor(tensor.name(), role, tensor.shape(), tensor.required()));
      }
      return this;
    }

    public Blueprint build() {
      return new Blueprint(modelType, blockCount, tensors, linears);
    }
  }
}
