package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.Linear;
import java.util.List;

/**
 * One gpt-oss expert from its slices of the fused tensors: gate_up [hidden x 2 intermediate]
 * (stored [in, out], gate and up in alternate columns) and down [intermediate x hidden], each
 * with its bias. As GptOssExperts: gate clamped above at limit, up to [-limit, limit],
 * out = ((up + 1) * gate * sigmoid(alpha * gate)) down + down_bias. {@code linears}: its gate, up
 * and down as prunable linears (slices of the fused tensors), which the hook sees: gate and up
 * read the routed rows, down the clamped SwiGLU; empty for an expert built without them.
 */
record GptOssExpert(
    int index, float[] gateUp, float[] gateUpBias, float[] down, float[] downBias, int hidden, int intermediate, float alpha, float limit,
    List<Linear> linears) implements RoutedExpert {

  GptOssExpert {
    linears = List.copyOf(linears);
    if (!linears.isEmpty() && linears.size() != 3) {
      throw new IllegalArgumentException("Invalid gpt-oss expert " + index + " linears: " + linears);
    }
    if (gateUp.length != hidden * 2 * intermediate || down.length != intermediate * hidden
        || gateUpBias.length != 2 * intermediate || downBias.length != hidden) {
      throw new IllegalArgumentException("Invalid gpt-oss expert " + index + " weights for hidden " + hidden + ", intermediate " + intermediate);
    }
  }

  @Override
  public float[] apply(LinearAlgebra linalg, float[] input, int rows, int sequences, InputHook hook) {
    if (!linears.isEmpty()) {
      hook.accept(linears.subList(0, 2), input, rows, sequences);
    }
    if (rows == 0) {
      if (!linears.isEmpty()) {
        hook.accept(linears.subList(2, 3), new float[0], 0, sequences);
      }
      return new float[0];
    }
    float[] inner = inner(linalg, input, rows);
    if (!linears.isEmpty()) {
      hook.accept(linears.subList(2, 3), inner, rows, sequences);
    }
    float[] out = new float[rows * hidden];
    linalg.gemm(rows, hidden, intermediate, 1f, inner, 0, intermediate, down, 0, hidden, 0f, out, 0, hidden);
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < hidden; c++) {
        out[r * hidden + c] += downBias[c];
      }
    }
    return out;
  }

  @Override
  public void observeAllTokens(LinearAlgebra linalg, float[] x, int tokens, int sequences, InputHook hook) {
    if (linears.isEmpty()) {
      return;
    }
    hook.accept(linears.subList(0, 2), x, tokens, sequences);
    hook.accept(linears.subList(2, 3), tokens == 0 ? new float[0] : inner(linalg, x, tokens), tokens, sequences);
  }

  /** The clamped SwiGLU of the gate and up projections [rows x intermediate]: down's input. */
  private float[] inner(LinearAlgebra linalg, float[] input, int rows) {
    int width = 2 * intermediate;
    float[] gateUpOut = new float[rows * width];
    linalg.gemm(rows, width, hidden, 1f, input, 0, hidden, gateUp, 0, width, 0f, gateUpOut, 0, width);
    float[] inner = new float[rows * intermediate];
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < intermediate; j++) {
        float gate = Math.min(gateUpOut[r * width + 2 * j] + gateUpBias[2 * j], limit);
        float up = Math.max(-limit, Math.min(gateUpOut[r * width + 2 * j + 1] + gateUpBias[2 * j + 1], limit));
        float glu = gate * (float) (1.0 / (1.0 + Math.exp(-gate * alpha)));
        inner[r * intermediate + j] = (up + 1f) * glu;
      }
    }
    return inner;
  }
}
