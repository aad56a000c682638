package dev.sparkprune.scoring.model;

/**
 * How one layer's attention scores are shaped: the factor on Q K^T, Gemma's tanh soft-cap
 * (0 = none) and a sliding window in tokens (0 = the whole causal prefix).
 */
record AttentionShape(float scale, double softcap, int window) {
  AttentionShape {
    if (softcap < 0 || window < 0) {
      throw new IllegalArgumentException("Invalid attention shape: softcap " + softcap + ", window " + window);
    }
  }

  /** Plain causal attention scaled by 1 / sqrt(headDim). */
  static AttentionShape causal(int headDim) {
    return new AttentionShape((float) (1.0 / Math.sqrt(headDim)), 0, 0);
  }
}
