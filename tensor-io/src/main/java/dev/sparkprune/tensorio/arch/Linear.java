package dev.sparkprune.tensorio.arch;

import java.io.Serializable;
import java.util.Objects;
import java.util.Optional;

/**
 * A prunable linear of a decoder block, always described in [out, in] orientation (rows are
 * output features). {@link #storedTransposed()} marks weights stored [in, out], as GPT-2's Conv1D.
 */
public final class Linear implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int block;
  private final String name;
  private final String tensorName;
  private final long outFeatures;
  private final long inFeatures;
  private final boolean storedTransposed;
  private final String inputGroup;
  private final String biasName;
  /** Null for linears outside any expert (as {@link #biasName}, exposed as an Optional). */
  private final Expert expert;

  public Linear(
      int block,
      String name,
      String tensorName,
      long outFeatures,
      long inFeatures,
      boolean storedTransposed,
      String inputGroup,
      String biasName) {
    this(block, name, tensorName, outFeatures, inFeatures, storedTransposed, inputGroup, biasName, null);
  }

  /** A linear of a routed or shared expert. */
  public Linear(
      int block,
      String name,
      String tensorName,
      long outFeatures,
      long inFeatures,
      boolean storedTransposed,
      String inputGroup,
      String biasName,
      Expert expert) {
    this.block = block;
    this.name = Objects.requireNonNull(name, "name is null");
    this.tensorName = Objects.requireNonNull(tensorName, "tensorName is null");
    this.outFeatures = outFeatures;
    this.inFeatures = inFeatures;
    this.storedTransposed = storedTransposed;
    this.inputGroup = Objects.requireNonNull(inputGroup, "inputGroup is null");
    this.biasName = biasName;
    this.expert = expert;
  }

  public int block() {
    return block;
  }

  /** The name within the block, as in the checkpoint: {@code self_attn.q_proj}, {@code mlp.c_fc}. */
  public String name() {
    return name;
  }

  public String tensorName() {
    return tensorName;
  }

  public long outFeatures() {
    return outFeatures;
  }

  public long inFeatures() {
    return inFeatures;
  }

  public long parameters() {
    return outFeatures * inFeatures;
  }

  public boolean storedTransposed() {
    return storedTransposed;
  }

  /** The stored shape: [out, in], or [in, out] when stored transposed. */
  public long[] storedShape() {
    return storedTransposed ? new long[] {inFeatures, outFeatures} : new long[] {outFeatures, inFeatures};
  }

  /**
   * Linears of one block with the same input group read the same activations (q/k/v; gate/up), so
   * one set of calibration statistics serves them all.
   */
  public String inputGroup() {
    return inputGroup;
  }

  public Optional<String> biasName() {
    return Optional.ofNullable(biasName);
  }

  /** The expert this linear belongs to, if its block is a mixture of experts. */
  public Optional<Expert> expert() {
    return Optional.ofNullable(expert);
  }

  /** True for a routed expert's linear: its calibration inputs are the rows routed to it. */
  public boolean isRoutedExpert() {
    return expert != null && !expert.shared();
  }

  @Override
  public String toString() {
    return "block " + block + " " + name + " [" + outFeatures + " x " + inFeatures + "]";
  }
}
