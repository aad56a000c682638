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
  /**
   * A router's bias (gpt-oss {@code router.bias}) or the correction bias DeepSeek-V3 and GLM-4.5
   * add to scores when choosing experts ({@code e_score_correction_bias}): never pruned.
   */
  ROUTER_BIAS,
  /** The shared expert's sigmoid gate (Qwen2-MoE): never pruned. */
  SHARED_EXPERT_GATE,
  /**
   * Every routed expert of a block in one tensor, experts first (gpt-oss {@code
   * experts.gate_up_proj} [experts, hidden, 2 x intermediate], {@code experts.down_proj}):
   * run per expert; each expert's gate, up and down are prunable linears, slices of it
   * ({@link FusedExpertSlice}).
   */
  EXPERTS,
  /** gpt-oss's per-head attention sink logits ({@code self_attn.sinks}): never pruned. */
  ATTENTION_SINKS,
  /**
   * A multi-token-prediction layer ({@code model.layers.{num_hidden_layers + i}}, DeepSeek-V3
   * and GLM-4.5): known, carried through unchanged, never run by the forward pass or pruned.
   */
  MTP,
  OTHER
}
