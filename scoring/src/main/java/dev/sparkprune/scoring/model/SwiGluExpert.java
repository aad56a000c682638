package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.Linear;
import java.util.List;

/**
 * A routed expert with its own gate, up and down linears (Mixtral, Qwen-MoE, DeepSeek-V3,
 * GLM-4.5): down(silu(gate x) * up x). {@code weights} must hold those three tensors.
 */
record SwiGluExpert(int index, Linear gate, Linear up, Linear down, BlockWeights weights) implements RoutedExpert {
  @Override
  public float[] apply(LinearAlgebra linalg, float[] input, int rows, int sequences, InputHook hook) {
    hook.accept(List.of(gate, up), input, rows, sequences);
    if (rows == 0) {
      hook.accept(List.of(down), new float[0], 0, sequences);
      return new float[0];
    }
    float[] inner = Fused.swiGlu(linalg, weights, gate, up, input, rows);
    hook.accept(List.of(down), inner, rows, sequences);
    return Fused.apply(linalg, weights, down, inner, rows);
  }

  @Override
  public void observeAllTokens(LinearAlgebra linalg, float[] x, int tokens, int sequences, InputHook hook) {
    hook.accept(List.of(gate, up), x, tokens, sequences);
    hook.accept(List.of(down), Fused.swiGlu(linalg, weights, gate, up, x, tokens), tokens, sequences);
  }
}
