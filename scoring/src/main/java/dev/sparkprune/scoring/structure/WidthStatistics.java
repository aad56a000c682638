package dev.sparkprune.scoring.structure;

import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Linear;
import java.io.Serializable;
import java.util.List;

/**
 * One block's calibration statistics for width and expert pruning: per-channel Σ x² and Σ x of
 * the o_proj input and of the (dense) down_proj input with their token counts (FLAP's variance
 * needs the sums), and the routed experts' saliency. As a hook it accumulates during the block's
 * forward pass; partials fold with {@link #plus}.
 */
public final class WidthStatistics implements InputHook, Serializable {
  private static final long serialVersionUID = 2L;
  static final String O_PROJ = "self_attn.o_proj";
  static final String DOWN_PROJ = "mlp.down_proj";

  private double[] oSumSquares = new double[0];
  private double[] downSumSquares = new double[0];
  private double[] oSums = new double[0];
  private double[] downSums = new double[0];
  private long oTokens;
  private long downTokens;
  private final ExpertSaliency experts;

  /** @param experts routed experts of the block; 0 for a dense block */
  public WidthStatistics(int experts) {
    this.experts = ExpertSaliency.empty(experts);
  }

  @Override
  public void accept(List<Linear> linears, float[] input, int tokens, int sequences) {
    if (linears.size() != 1 || linears.get(0).expert().isPresent()) {
      return;
    }
    String name = linears.get(0).name();
    int width = (int) linears.get(0).inFeatures();
    if (name.equals(O_PROJ)) {
      oSumSquares = addSquares(oSumSquares, input, tokens, width);
      oSums = addValues(oSums, input, tokens, width);
      oTokens += tokens;
    } else if (name.equals(DOWN_PROJ)) {
      downSumSquares = addSquares(downSumSquares, input, tokens, width);
      downSums = addValues(downSums, input, tokens, width);
      downTokens += tokens;
    }
  }

  @Override
  public void acceptExpertOutput(int expert, int[] rows, float[] routingWeights, float[] output, int width) {
    experts.add(expert, routingWeights, output, rows.length, width);
  }

  private static double[] addSquares(double[] sums, float[] x, int tokens, int width) {
    double[] out = sums.length == 0 ? new double[width] : sums;
    ValidationException.check(out.length == width, "Invalid input width %d, expected %d", width, out.length);
    for (int t = 0; t < tokens; t++) {
      for (int c = 0; c < width; c++) {
        double v = x[t * width + c];
        out[c] += v * v;
      }
    }
    return out;
  }

  private static double[] addValues(double[] sums, float[] x, int tokens, int width) {
    double[] out = sums.length == 0 ? new double[width] : sums;
    ValidationException.check(out.length == width, "Invalid input width %d, expected %d", width, out.length);
    for (int t = 0; t < tokens; t++) {
      for (int c = 0; c < width; c++) {
        out[c] += x[t * width + c];
      }
    }
    return out;
  }

  /** Σ x per o_proj input column (empty before any token). */
  public double[] oInputSums() {
    return oSums.clone();
  }

  /** Σ x per down_proj input channel (empty for a sparse block). */
  public double[] downInputSums() {
    return downSums.clone();
  }

  /** Tokens seen by o_proj. */
  public long oTokens() {
    return oTokens;
  }

  /** Tokens seen by the dense down_proj (0 for a sparse block). */
  public long downTokens() {
    return downTokens;
  }

  /** Σ x² per o_proj input column (empty before any token). */
  public double[] oInputSumSquares() {
    return oSumSquares.clone();
  }

  /** Σ x² per down_proj input channel (empty for a sparse block). */
  public double[] downInputSumSquares() {
    return downSumSquares.clone();
  }

  public ExpertSaliency experts() {
    return experts;
  }

  /** The sum of two partials of the same block over disjoint tokens. */
  public WidthStatistics plus(WidthStatistics other) {
    WidthStatistics sum = new WidthStatistics(experts.plus(other.experts));
    sum.oSumSquares = add(oSumSquares, other.oSumSquares);
    sum.downSumSquares = add(downSumSquares, other.downSumSquares);
    sum.oSums = add(oSums, other.oSums);
    sum.downSums = add(downSums, other.downSums);
    sum.oTokens = oTokens + other.oTokens;
    sum.downTokens = downTokens + other.downTokens;
    return sum;
  }

  private WidthStatistics(ExpertSaliency experts) {
    this.experts = experts;
  }

  private static double[] add(double[] a, double[] b) {
    if (a.length == 0 || b.length == 0) {
      return (a.length == 0 ? b : a).clone();
    }
    ValidationException.check(a.length == b.length, "Cannot fold statistics of %d channels into %d", b.length, a.length);
    double[] out = a.clone();
    for (int i = 0; i < out.length; i++) {
      out[i] += b[i];
    }
    return out;
  }
}
