package dev.sparkprune.scoring.structure;

import dev.sparkprune.tensorio.ValidationException;

/**
 * First-order Taylor importance of the structures width pruning removes (LLM-Pruner, Ma et al.
 * 2023, hf_prune.py with --taylor param_first and group reduction sum; LLMPruner/pruner
 * hf_llama_pruner.py TaylorImportance): each weight's salience |W_ij * dL/dW_ij|, with dL/dW the
 * gradient of the mean calibration loss (the mean of the per-sample gradients), summed over the
 * weights the structure removes: an MLP intermediate channel j is row j of gate and up and column j
 * of down; a KV group is its query heads' q rows and o columns and its k and v rows; a routed
 * expert is all of its three matrices. Weights are row-major [out x in] floats, gradients the
 * matching doubles ({@code GradientStatistics.meanGradient}).
 */
public final class TaylorScores {
  private TaylorScores() {}

  /** sum_c |W[r, c] g[r, c]| per row r of a [rows x cols] weight. */
  public static double[] rowSaliences(float[] w, double[] gradient, int rows, int cols) {
    check(w, gradient, (long) rows * cols, "weight");
    double[] out = new double[rows];
    for (int r = 0; r < rows; r++) {
      double sum = 0;
      for (int c = 0; c < cols; c++) {
        sum += Math.abs(w[r * cols + c] * gradient[r * cols + c]);
      }
      out[r] = sum;
    }
    return out;
  }

  /** sum_r |W[r, c] g[r, c]| per column c of a [rows x cols] weight. */
  public static double[] columnSaliences(float[] w, double[] gradient, int rows, int cols) {
    check(w, gradient, (long) rows * cols, "weight");
    double[] out = new double[cols];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[c] += Math.abs(w[r * cols + c] * gradient[r * cols + c]);
      }
    }
    return out;
  }

  /** Per intermediate channel j: the saliences of gate row j, up row j and down column j. */
  public static double[] mlpChannels(
      float[] gate, double[] gateGradient, float[] up, double[] upGradient, float[] down, double[] downGradient, int hidden, int intermediate) {
    double[] scores = rowSaliences(gate, gateGradient, intermediate, hidden);
    add(scores, rowSaliences(up, upGradient, intermediate, hidden));
    add(scores, columnSaliences(down, downGradient, hidden, intermediate));
    return scores;
  }

  /** Per KV group: its query heads' q rows and o columns, its k and v rows. */
  public static double[] kvGroups(
      float[] q, double[] qGradient, float[] k, double[] kGradient, float[] v, double[] vGradient, float[] o, double[] oGradient, int hidden,
      AttentionGroups groups) {
    int qWidth = groups.heads() * groups.headDim();
    int kvWidth = groups.kvHeads() * groups.headDim();
    double[] qRows = rowSaliences(q, qGradient, qWidth, hidden);
    add(qRows, columnSaliences(o, oGradient, hidden, qWidth));
    double[] kvRows = rowSaliences(k, kGradient, kvWidth, hidden);
    add(kvRows, rowSaliences(v, vGradient, kvWidth, hidden));
    double[] scores = new double[groups.kvHeads()];
    for (int c = 0; c < qWidth; c++) {
      scores[groups.groupOfColumn(c)] += qRows[c];
    }
    for (int c = 0; c < kvWidth; c++) {
      scores[c / groups.headDim()] += kvRows[c];
    }
    return scores;
  }

  /** A routed expert's importance: the saliences of all its weights (gate, up and down). */
  public static double expert(float[][] weights, double[][] gradients) {
    ValidationException.check(weights.length == gradients.length, "Invalid expert: %d weights, %d gradients", weights.length, gradients.length);
    double sum = 0;
    for (int m = 0; m < weights.length; m++) {
      check(weights[m], gradients[m], weights[m].length, "expert weight " + m);
      for (int i = 0; i < weights[m].length; i++) {
        sum += Math.abs(weights[m][i] * gradients[m][i]);
      }
    }
    return sum;
  }

  private static void add(double[] target, double[] addend) {
    for (int i = 0; i < target.length; i++) {
      target[i] += addend[i];
    }
  }

  private static void check(float[] w, double[] gradient, long expected, String what) {
    ValidationException.check(
        w.length == expected && gradient.length == expected,
        "Invalid %s for Taylor importance: %d weights and %d gradients, expected %d", what, w.length, gradient.length, expected);
  }
}
