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
  /** A mixture-of-experts router ({@code gate}): never pruned, routing depends on it exactly. */
  ROUTER,
  /** The shared expert's sigmoid gate (Qwen2-MoE): never pruned. */
  SHARED_EXPERT_GATE,
  OTHER
}
