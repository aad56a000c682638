package dev.sparkprune.scoring.model;

/**
 * How one layer's attention scores are shaped: the factor on Q K^T, Gemma's tanh soft-cap
 * (0 = none), a sliding window in tokens (0 = the whole causal prefix) and gpt-oss's per-head
 * sink logits (empty = none).
 */
record AttentionShape(float scale, double softcap, int window, float[] sinks) {
  AttentionShape {
    if (softcap < 0 || window < 0) {
      throw new IllegalArgumentException("Invalid attention shape: softcap " + softcap + ", window " + window);
    }
    sinks = sinks.clone();
  }

  AttentionShape(float scale, double softcap, int window) {
    this(scale, softcap, window, new float[0]);
  }

  /** Plain causal attention scaled by 1 / sqrt(headDim). */
  static AttentionShape causal(int headDim) {
    return new AttentionShape((float) (1.0 / Math.sqrt(headDim)), 0, 0);
  }

  /** Head h's sink logit; negative infinity where there are none (its exp is 0). */
  float sink(int head) {
    return sinks.length == 0 ? Float.NEGATIVE_INFINITY : sinks[head];
  }
}
