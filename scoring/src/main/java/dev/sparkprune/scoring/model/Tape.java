package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.Linear;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reverse-mode differentiation of one block's (or the head's) forward, for one sequence. Each op
 * computes its output with the same kernels as the forward pass ({@link Layers}, {@link Fused},
 * {@link Rope}), so a recorded block gives the forward's values bit for bit, and records a step
 * that sends the output's gradient back to its inputs. {@link #backward} runs the steps in
 * reverse. Values are plain float arrays, each op returning a new one; gradients are kept per
 * array (by identity), float32 like the forward, with per-row reductions in double.
 *
 * <p>What it holds is the block's activations: the recomputation of checkpointing, where only
 * block inputs survive between blocks.
 */
final class Tape {
  private final LinearAlgebra linalg;
  private final WeightGradientSink sink;
  private final List<Runnable> steps = new ArrayList<>();
  private final Map<float[], float[]> gradients = new IdentityHashMap<>();

  Tape(LinearAlgebra linalg, WeightGradientSink sink) {
    this.linalg = linalg;
    this.sink = sink;
  }

  LinearAlgebra linalg() {
    return linalg;
  }

  /** The gradient accumulated for {@code value} so far (zeros until a step adds to it). */
  float[] gradient(float[] value) {
    return gradients.computeIfAbsent(value, v -> new float[v.length]);
  }

  /** Sets dLoss/d{@code output} and runs every recorded step, last first. */
  void backward(float[] output, float[] outputGradient) {
    System.arraycopy(outputGradient, 0, gradient(output), 0, output.length);
    backward();
  }

  /** Runs every recorded step, last first (a loss step seeds the gradient itself). */
  void backward() {
    for (int i = steps.size() - 1; i >= 0; i--) {
      steps.get(i).run();
    }
    steps.clear();
  }

  private void record(Runnable step) {
    steps.add(step);
  }

  private static void addInto(float[] target, float[] addend) {
    for (int i = 0; i < target.length; i++) {
      target[i] += addend[i];
    }
  }

  /** A layout linear (with its bias): Y = X W^T + b; sends dW = dY^T X to the sink. */
  float[] linear(BlockWeights w, Linear linear, float[] x, int tokens) {
    // A routed expert that no token chose still reports its (zero) gradient.
    float[] y = tokens == 0 ? new float[0] : Fused.apply(linalg, w, linear, x, tokens);
    recordMatmul(x, tokens, (int) linear.inFeatures(), w.tensor(linear.tensorName()), (int) linear.outFeatures(), y, linear.tensorName());
    return y;
  }

  /**
   * Y = X W^T for a weight outside the layout's linears (router, shared-expert gate, LM head);
   * its gradient goes to the sink under {@code tensor} unless that is null.
   */
  float[] matmul(float[] x, int tokens, int in, float[] weight, int out, String tensor) {
    float[] y = Layers.linear(linalg, x, tokens, in, weight, out, null);
    recordMatmul(x, tokens, in, weight, out, y, tensor);
    return y;
  }

  private void recordMatmul(float[] x, int tokens, int in, float[] weight, int out, float[] y, String tensor) {
    record(() -> {
      float[] dy = gradient(y);
      if (tokens > 0) {
        // dX += dY W: [tokens x out] [out x in].
        linalg.gemm(tokens, in, out, 1f, dy, 0, out, weight, 0, in, 1f, gradient(x), 0, in);
      }
      if (tensor != null) {
        sink.accept(tensor, out, in, weightGradient(dy, x, tokens, in, out));
      }
    });
  }

  /** dW = dY^T X [out x in], through a transposed copy of dY (the BLAS seam has no A^T B). */
  private float[] weightGradient(float[] dy, float[] x, int tokens, int in, int out) {
    float[] dw = new float[out * in];
    if (tokens == 0) {
      return dw;
    }
    float[] dyT = transpose(dy, tokens, out);
    linalg.gemm(out, in, tokens, 1f, dyT, 0, tokens, x, 0, in, 0f, dw, 0, in);
    return dw;
  }

  /** Row-major [rows x cols] to [cols x rows]. */
  static float[] transpose(float[] values, int rows, int cols) {
    float[] out = new float[values.length];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[c * rows + r] = values[r * cols + c];
      }
    }
    return out;
  }

  /** RMSNorm y = w x r with r = 1 / sqrt(mean(x^2) + eps); dx = r (w dy) - x r^3 mean(w dy x). */
  float[] rmsNorm(float[] x, int rows, int width, float[] weight, double eps) {
    float[] y = Layers.rmsNorm(x, rows, width, weight, eps);
    record(() -> {
      float[] dy = gradient(y);
      float[] dx = gradient(x);
      for (int t = 0; t < rows; t++) {
        int row = t * width;
        double squares = 0;
        double dot = 0;
        for (int i = 0; i < width; i++) {
          double xi = x[row + i];
          squares += xi * xi;
          dot += (double) weight[i] * dy[row + i] * xi;
        }
        double r = 1.0 / Math.sqrt(squares / width + eps);
        double correction = r * r * r * dot / width;
        for (int i = 0; i < width; i++) {
          dx[row + i] += (float) (r * weight[i] * dy[row + i] - x[row + i] * correction);
        }
      }
    });
    return y;
  }

  /** LayerNorm y = x̂ w + b, x̂ = (x - mean) rstd; dx = rstd (g - mean(g) - x̂ mean(g x̂)) with g = w dy. */
  float[] layerNorm(float[] x, int rows, int width, float[] weight, float[] bias, double eps) {
    float[] y = Layers.layerNorm(x, rows, width, weight, bias, eps);
    record(() -> {
      float[] dy = gradient(y);
      float[] dx = gradient(x);
      double[] normed = new double[width];
      for (int t = 0; t < rows; t++) {
        int row = t * width;
        double mean = 0;
        for (int i = 0; i < width; i++) {
          mean += x[row + i];
        }
        mean /= width;
        double variance = 0;
        for (int i = 0; i < width; i++) {
          double centered = x[row + i] - mean;
          variance += centered * centered;
        }
        double rstd = 1.0 / Math.sqrt(variance / width + eps);
        double meanG = 0;
        double meanGx = 0;
        for (int i = 0; i < width; i++) {
          normed[i] = (x[row + i] - mean) * rstd;
          double g = (double) weight[i] * dy[row + i];
          meanG += g;
          meanGx += g * normed[i];
        }
        meanG /= width;
        meanGx /= width;
        for (int i = 0; i < width; i++) {
          double g = (double) weight[i] * dy[row + i];
          dx[row + i] += (float) (rstd * (g - meanG - normed[i] * meanGx));
        }
      }
    });
    return y;
  }

  /**
   * RoPE on a copy of x. Its backward is the transposed rotation: swapping each pair (x1, x2)
   * turns the rotation by +angle into the rotation by -angle, so dx = swap(rope(swap(dy))) with
   * the same tables (longrope's magnitude included).
   */
  float[] rope(Rope rope, float[] x, int sequences, int length, int heads) {
    float[] y = x.clone();
    rope.apply(y, sequences, length, heads);
    record(() -> {
      float[] g = gradient(y).clone();
      swapHalves(g, rope.headDim, rope.rotaryDim);
      rope.apply(g, sequences, length, heads);
      swapHalves(g, rope.headDim, rope.rotaryDim);
      addInto(gradient(x), g);
    });
    return y;
  }

  private static void swapHalves(float[] x, int headDim, int rotaryDim) {
    int half = rotaryDim / 2;
    for (int head = 0; head < x.length; head += headDim) {
      for (int i = 0; i < half; i++) {
        float first = x[head + i];
        x[head + i] = x[head + i + half];
        x[head + i + half] = first;
      }
    }
  }

  /** Attention as {@link Layers#attention}; its backward recomputes the probabilities per tile. */
  float[] attention(float[] q, float[] k, float[] v, int sequences, int length, int heads, int kvHeads, int headDim, AttentionShape shape) {
    float[] out = Layers.attention(linalg, q, k, v, sequences, length, heads, kvHeads, headDim, shape);
    record(() -> AttentionGradient.backward(
        linalg, q, k, v, gradient(out), gradient(q), gradient(k), gradient(v), sequences, length, heads, kvHeads, headDim, shape));
    return out;
  }

  float[] add(float[] a, float[] b) {
    float[] y = a.clone();
    Layers.addInPlace(y, b);
    record(() -> {
      float[] dy = gradient(y);
      addInto(gradient(a), dy);
      addInto(gradient(b), dy);
    });
    return y;
  }

  /** The gated MLP's hidden activations act(gate) * up (SwiGLU with silu, GeGLU with gelu tanh). */
  float[] gated(float[] gate, float[] up, Activation activation) {
    float[] y = new float[gate.length];
    for (int i = 0; i < y.length; i++) {
      y[i] = activation.apply(gate[i]) * up[i];
    }
    record(() -> {
      float[] dy = gradient(y);
      float[] dGate = gradient(gate);
      float[] dUp = gradient(up);
      for (int i = 0; i < y.length; i++) {
        dGate[i] += (float) (dy[i] * up[i] * activation.derivative(gate[i]));
        dUp[i] += dy[i] * activation.apply(gate[i]);
      }
    });
    return y;
  }

  /** act(x) elementwise. */
  float[] activate(float[] x, Activation activation) {
    float[] y = new float[x.length];
    for (int i = 0; i < y.length; i++) {
      y[i] = activation.apply(x[i]);
    }
    record(() -> {
      float[] dy = gradient(y);
      float[] dx = gradient(x);
      for (int i = 0; i < y.length; i++) {
        dx[i] += (float) (dy[i] * activation.derivative(x[i]));
      }
    });
    return y;
  }

  /** Gemma's soft-capping cap * tanh(x / cap); d/dx = 1 - (y / cap)^2. */
  float[] softcap(float[] x, double cap) {
    float[] y = x.clone();
    Layers.softcap(y, 0, y.length, cap);
    record(() -> {
      float[] dy = gradient(y);
      float[] dx = gradient(x);
      for (int i = 0; i < y.length; i++) {
        double capped = y[i] / cap;
        dx[i] += (float) (dy[i] * (1 - capped * capped));
      }
    });
    return y;
  }

  /** Column blocks of the given widths ({@link Fused#splitWidths}); gradients scatter back. */
  float[][] splitWidths(float[] fused, int tokens, int... widths) {
    float[][] parts = Fused.splitWidths(fused, tokens, widths);
    int total = fused.length / Math.max(1, tokens);
    record(() -> {
      float[] dFused = gradient(fused);
      for (int p = 0, offset = 0; p < parts.length; offset += widths[p], p++) {
        float[] dPart = gradient(parts[p]);
        for (int t = 0; t < tokens; t++) {
          for (int c = 0; c < widths[p]; c++) {
            dFused[t * total + offset + c] += dPart[t * widths[p] + c];
          }
        }
      }
    });
    return parts;
  }

  /** GPT-NeoX's per-head [q_h | k_h | v_h] layout ({@link Fused#splitPerHead}). */
  float[][] splitPerHead(float[] fused, int tokens, int heads, int headDim) {
    float[][] parts = Fused.splitPerHead(fused, tokens, heads, headDim);
    int width = heads * headDim;
    record(() -> {
      float[] dFused = gradient(fused);
      for (int p = 0; p < 3; p++) {
        float[] dPart = gradient(parts[p]);
        for (int t = 0; t < tokens; t++) {
          for (int h = 0; h < heads; h++) {
            for (int c = 0; c < headDim; c++) {
              dFused[t * 3 * width + h * 3 * headDim + p * headDim + c] += dPart[t * width + h * headDim + c];
            }
          }
        }
      }
    });
    return parts;
  }

  /** Rows {@code rows} of x [tokens x width] in order (a routed expert's input). */
  float[] gatherRows(float[] x, int[] rows, int width) {
    float[] y = SparseMoe.gatherRows(x, rows, width);
    record(() -> {
      float[] dy = gradient(y);
      float[] dx = gradient(x);
      for (int i = 0; i < rows.length; i++) {
        for (int c = 0; c < width; c++) {
          dx[rows[i] * width + c] += dy[i * width + c];
        }
      }
    });
    return y;
  }

  /**
   * out[rows[i]] += y[i] * scales[rows[i] * stride + column], in place on {@code out} (the MoE
   * sum over experts, in expert order as the forward adds them); the gradient reaches y and the
   * routing weights, whose values the step reads, never out's.
   */
  void addScaledRows(float[] out, float[] y, int[] rows, int width, float[] scales, int stride, int column) {
    for (int i = 0; i < rows.length; i++) {
      float scale = scales[rows[i] * stride + column];
      int target = rows[i] * width;
      for (int c = 0; c < width; c++) {
        out[target + c] += y[i * width + c] * scale;
      }
    }
    record(() -> {
      float[] dOut = gradient(out);
      float[] dy = gradient(y);
      float[] dScales = gradient(scales);
      for (int i = 0; i < rows.length; i++) {
        int at = rows[i] * stride + column;
        double dot = 0;
        for (int c = 0; c < width; c++) {
          float g = dOut[rows[i] * width + c];
          dy[i * width + c] += g * scales[at];
          dot += (double) g * y[i * width + c];
        }
        dScales[at] += (float) dot;
      }
    });
  }

  /**
   * out[t] += sigmoid(gate[t]) * y[t] in place (Qwen2-MoE's shared expert under its gate);
   * d gate[t] = sigmoid (1 - sigmoid) (dOut[t] . y[t]).
   */
  void addSigmoidScaledRows(float[] out, float[] y, float[] gate, int width) {
    int rows = gate.length;
    for (int t = 0; t < rows; t++) {
      float sigmoid = (float) (1.0 / (1.0 + Math.exp(-gate[t])));
      for (int c = 0; c < width; c++) {
        out[t * width + c] += sigmoid * y[t * width + c];
      }
    }
    record(() -> {
      float[] dOut = gradient(out);
      float[] dy = gradient(y);
      float[] dGate = gradient(gate);
      for (int t = 0; t < rows; t++) {
        float sigmoid = (float) (1.0 / (1.0 + Math.exp(-gate[t])));
        double dot = 0;
        for (int c = 0; c < width; c++) {
          dy[t * width + c] += sigmoid * dOut[t * width + c];
          dot += (double) dOut[t * width + c] * y[t * width + c];
        }
        dGate[t] += (float) (dot * sigmoid * (1 - sigmoid));
      }
    });
  }

  /** A zero array that ops may accumulate into in place ({@link #addScaledRows}). */
  float[] zeros(int length) {
    return new float[length];
  }

  /** Causal-LM loss of one sequence's logits; see {@link NextTokenLoss}. */
  double nextTokenLoss(float[] logits, int[] tokens, int vocab) {
    return NextTokenLoss.record(this, logits, tokens, vocab);
  }

  /** Records a step written elsewhere in this package (routing, the loss). */
  void step(Runnable step) {
    record(step);
  }

  /** An elementwise activation and its derivative, evaluated in double. */
  enum Activation {
    SILU {
      @Override
      float apply(float x) {
        return Layers.silu(x);
      }

      @Override
      double derivative(float x) {
        double sigmoid = 1.0 / (1.0 + Math.exp(-x));
        return sigmoid * (1 + x * (1 - sigmoid));
      }
    },
    GELU_TANH {
      @Override
      float apply(float x) {
        return Layers.geluTanh(x);
      }

      @Override
      double derivative(float x) {
        double c = Math.sqrt(2.0 / Math.PI);
        double inner = c * (x + 0.044715 * x * x * x);
        double tanh = Math.tanh(inner);
        return 0.5 * (1 + tanh) + 0.5 * x * (1 - tanh * tanh) * c * (1 + 3 * 0.044715 * x * x);
      }
    },
    GELU_ERF {
      @Override
      float apply(float x) {
        return Layers.geluErf(x);
      }

      @Override
      double derivative(float x) {
        return 0.5 * (1 + Layers.erf(x / Math.sqrt(2.0))) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
      }
    },
    RELU {
      @Override
      float apply(float x) {
        return Math.max(0f, x);
      }

      @Override
      double derivative(float x) {
        return x > 0 ? 1 : 0;
      }
    };

    abstract float apply(float x);

    abstract double derivative(float x);
  }
}
