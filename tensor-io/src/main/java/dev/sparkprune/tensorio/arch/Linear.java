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
  /** Null unless the linear is a slice of a fused expert tensor (gpt-oss; exposed as an Optional). */
  private final FusedExpertSlice fusedSlice;

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
    this(block, name, tensorName, outFeatures, inFeatures, storedTransposed, inputGroup, biasName, expert, null);
  }

  /**
   * A routed expert's linear that is a slice of a fused expert tensor (gpt-oss): {@code tensorName}
   * names the linear alone (its key in plans, masks and staged files; no such tensor is stored),
   * {@code fusedSlice} says where its weights are stored.
   */
  public Linear(
      int block,
      String name,
      String tensorName,
      long outFeatures,
      long inFeatures,
      String inputGroup,
      Expert expert,
      FusedExpertSlice fusedSlice) {
    this(block, name, tensorName, outFeatures, inFeatures, false, inputGroup, null, expert,
        Objects.requireNonNull(fusedSlice, "fusedSlice is null"));
  }

  private Linear(
      int block,
      String name,
      String tensorName,
      long outFeatures,
      long inFeatures,
      boolean storedTransposed,
      String inputGroup,
      String biasName,
      Expert expert,
      FusedExpertSlice fusedSlice) {
    this.block = block;
    this.name = Objects.requireNonNull(name, "name is null");
    this.tensorName = Objects.requireNonNull(tensorName, "tensorName is null");
    this.outFeatures = outFeatures;
    this.inFeatures = inFeatures;
    this.storedTransposed = storedTransposed;
    this.inputGroup = Objects.requireNonNull(inputGroup, "inputGroup is null");
    this.biasName = biasName;
    this.expert = expert;
    this.fusedSlice = fusedSlice;
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

  /** Where the linear's weights are stored when it is a slice of a fused expert tensor (gpt-oss). */
  public Optional<FusedExpertSlice> fusedSlice() {
    return Optional.ofNullable(fusedSlice);
  }

  /** The stored tensor holding the linear's weights: its own, or the fused expert tensor it is a slice of. */
  public String storedTensorName() {
    return fusedSlice == null ? tensorName : fusedSlice.tensor();
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
