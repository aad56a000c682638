package dev.sparkprune.scoring.model;

import java.util.Objects;

/**
 * A sparse block run up to its mixture of experts ({@link DecoderModel#attend}): the residual
 * stream after attention and the MoE's normed input x, both [tokens x hidden]. The MoE's
 * output, routed and shared experts combined ({@link MoeBlock}), added to the residual is the
 * block's output: {@link DecoderModel#runBlock} is exactly these steps.
 */
public final class MoeInput {
  private final HiddenStates residual;
  private final float[] x;

  public MoeInput(HiddenStates residual, float[] x) {
    this.residual = Objects.requireNonNull(residual, "residual is null");
    this.x = Objects.requireNonNull(x, "x is null");
    if (x.length != residual.values().length) {
      throw new IllegalArgumentException("Invalid MoE input: " + x.length + " values for " + residual.tokens() + " x " + residual.width());
    }
  }

  /** The residual stream after attention, [sequences x length x hidden]. */
  public HiddenStates residual() {
    return residual;
  }

  /** The MoE's input: the post-attention norm of the residual, [tokens x hidden]. */
  public float[] x() {
    return x;
  }

  public int tokens() {
    return residual.tokens();
  }

  public int sequences() {
    return residual.sequences();
  }

  /** The block's output: a copy of the residual plus the MoE's output [tokens x hidden]. */
  public HiddenStates finish(float[] moeOutput) {
    float[] h = residual.values().clone();
    Layers.addInPlace(h, moeOutput);
    return new HiddenStates(residual.sequences(), residual.length(), residual.width(), h);
  }
}
