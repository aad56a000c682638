package dev.sparkprune.tensorio.arch;

/** What a tensor does in the model; only {@link #LINEAR} weights are pruned by default. */
public enum TensorRole {
  EMBEDDING,
  POSITION_EMBEDDING,
  LINEAR,
  BIAS,
  NORM,
  PROJECTION,
  LM_HEAD,
  OTHER
}
