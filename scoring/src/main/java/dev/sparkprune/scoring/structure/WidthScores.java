package dev.sparkprune.scoring.structure;

import dev.sparkprune.tensorio.ValidationException;

/**
 * Scores of the structures width pruning removes together: an MLP intermediate channel j (row j
 * of gate and up, column j of down) and an attention KV group (its query heads' q rows and o
 * columns, its k and v rows). Weights are row-major [out x in] floats.
 *
 * <p>Activation-aware (the default): removing channel j changes the down projection's output on
 * the calibration tokens by exactly X_j W_down[:, j]ᵀ, whose Frobenius norm is
 * ‖X_j‖₂ · ‖W_down[:, j]‖₂ — Wanda's |W|·‖X‖ summed in quadrature over the column, and the exact
 * error of removing that channel alone. A KV group's score sums the same quantity over its
 * heads' o_proj input columns (the triangle-inequality bound of removing them together).
 * Weight-norm (the baseline): the L2 norm of all weights of the group, no calibration.
 *
 * <p>FLAP (An et al., "Fluctuation-based Adaptive Structured Pruning for Large Language Models",
 * AAAI 2024): channel j scores the sample variance of its input over the calibration tokens
 * times ‖W[:, j]‖²: what removing it changes beyond its mean, which a bias can give back
 * ({@link #biasCompensation}). A KV group sums the score over its heads' o_proj columns.
 */
public final class WidthScores {
  private WidthScores() {}

  /** ‖X_j‖₂ · ‖W_down[:, j]‖₂ per channel; sumSquares[j] = Σ_t x_tj² of the down_proj input. */
  public static double[] mlpChannels(float[] down, int hidden, int intermediate, double[] sumSquares) {
    checkLength(down, (long) hidden * intermediate, "down_proj");
    checkLength(sumSquares.length, intermediate, "down_proj input statistics");
    return activationAware(columnNorms(down, hidden, intermediate), sumSquares);
  }

  /** sqrt(sumSquares[j]) · columnNorms[j]: the activation-aware score from a linear's column norms. */
  public static double[] activationAware(double[] columnNorms, double[] sumSquares) {
    checkLength(sumSquares.length, columnNorms.length, "input statistics");
    double[] scores = new double[columnNorms.length];
    for (int j = 0; j < scores.length; j++) {
      scores[j] = Math.sqrt(sumSquares[j]) * columnNorms[j];
    }
    return scores;
  }

  /**
   * FLAP's fluctuation per input channel j: the sample variance (Σx² − (Σx)²/N) / (N − 1) of x_j
   * over the N calibration tokens, times ‖W[:, j]‖² (columnNorms[j] squared).
   */
  public static double[] fluctuation(double[] columnNorms, double[] sums, double[] sumSquares, long tokens) {
    checkLength(sums.length, columnNorms.length, "input sums");
    checkLength(sumSquares.length, columnNorms.length, "input statistics");
    ValidationException.check(tokens >= 2, "Cannot score channels by fluctuation: %d calibration tokens, need at least 2", tokens);
    double[] scores = new double[columnNorms.length];
    for (int j = 0; j < scores.length; j++) {
      double variance = Math.max(0, (sumSquares[j] - sums[j] * sums[j] / tokens) / (tokens - 1));
      scores[j] = variance * columnNorms[j] * columnNorms[j];
    }
    return scores;
  }

  /**
   * FLAP's bias compensation: Σ over the removed input channels j of W[:, j] · mean(x_j), the
   * mean output the removed channels gave; added to the layer's output bias it restores the
   * layer's mean output. {@code kept} ascending; W row-major [rows x cols].
   */
  public static double[] biasCompensation(float[] w, int rows, int cols, int[] kept, double[] sums, long tokens) {
    checkLength(w, (long) rows * cols, "weight");
    checkLength(sums.length, cols, "input sums");
    ValidationException.check(tokens >= 1, "Cannot compensate removed channels: no calibration tokens");
    boolean[] keep = new boolean[cols];
    for (int j : kept) {
      keep[j] = true;
    }
    double[] bias = new double[rows];
    for (int r = 0; r < rows; r++) {
      double sum = 0;
      for (int j = 0; j < cols; j++) {
        if (!keep[j]) {
          sum += w[r * cols + j] * (sums[j] / tokens);
        }
      }
      bias[r] = sum;
    }
    return bias;
  }

  /** The L2 norm of gate row j, up row j and down column j together. */
  public static double[] mlpChannelWeightNorms(float[] gate, float[] up, float[] down, int hidden, int intermediate) {
    checkLength(gate, (long) intermediate * hidden, "gate_proj");
    checkLength(up, (long) intermediate * hidden, "up_proj");
    checkLength(down, (long) hidden * intermediate, "down_proj");
    double[] squares = new double[intermediate];
    addRowSquares(gate, intermediate, hidden, 1, squares);
    addRowSquares(up, intermediate, hidden, 1, squares);
    addColumnSquares(down, hidden, intermediate, 1, squares);
    return sqrt(squares);
  }

  /**
   * Per KV group g: Σ over its query heads' o_proj input columns c of ‖X_c‖₂ · ‖W_o[:, c]‖₂;
   * sumSquares[c] = Σ_t x_tc² of the o_proj input (the heads' attention outputs).
   */
  public static double[] kvGroups(float[] o, int hidden, AttentionGroups groups, double[] sumSquares) {
    int width = groups.heads() * groups.headDim();
    checkLength(o, (long) hidden * width, "o_proj");
    checkLength(sumSquares.length, width, "o_proj input statistics");
    return sumPerGroup(activationAware(columnNorms(o, hidden, width), sumSquares), groups);
  }

  /** Column scores of o_proj summed per KV group. */
  public static double[] sumPerGroup(double[] columnScores, AttentionGroups groups) {
    double[] scores = new double[groups.kvHeads()];
    for (int c = 0; c < columnScores.length; c++) {
      scores[groups.groupOfColumn(c)] += columnScores[c];
    }
    return scores;
  }

  /** The L2 norm of each KV group's q rows, k rows, v rows and o columns together. */
  public static double[] kvGroupWeightNorms(float[] q, float[] k, float[] v, float[] o, int hidden, AttentionGroups groups) {
    int qWidth = groups.heads() * groups.headDim();
    int kvWidth = groups.kvHeads() * groups.headDim();
    checkLength(q, (long) qWidth * hidden, "q_proj");
    checkLength(k, (long) kvWidth * hidden, "k_proj");
    checkLength(v, (long) kvWidth * hidden, "v_proj");
    checkLength(o, (long) hidden * qWidth, "o_proj");
    double[] qSquares = new double[qWidth];
    addRowSquares(q, qWidth, hidden, 1, qSquares);
    addColumnSquares(o, hidden, qWidth, 1, qSquares);
    double[] kvSquares = new double[kvWidth];
    addRowSquares(k, kvWidth, hidden, 1, kvSquares);
    addRowSquares(v, kvWidth, hidden, 1, kvSquares);
    double[] groupSquares = new double[groups.kvHeads()];
    for (int c = 0; c < qWidth; c++) {
      groupSquares[groups.groupOfColumn(c)] += qSquares[c];
    }
    for (int c = 0; c < kvWidth; c++) {
      groupSquares[c / groups.headDim()] += kvSquares[c];
    }
    return sqrt(groupSquares);
  }

  /**
   * The {@code keepPerGroup} highest scores of each of {@code groups} contiguous groups of
   * indices, ascending: group-limited routing's experts, chosen group by group.
   */
  public static int[] topIndicesPerGroup(double[] scores, int groups, int keepPerGroup) {
    int perGroup = scores.length / groups;
    int[] indices = new int[groups * keepPerGroup];
    for (int g = 0; g < groups; g++) {
      int[] top = topIndices(java.util.Arrays.copyOfRange(scores, g * perGroup, (g + 1) * perGroup), keepPerGroup);
      for (int i = 0; i < keepPerGroup; i++) {
        indices[g * keepPerGroup + i] = g * perGroup + top[i];
      }
    }
    return indices;
  }

  /**
   * The indices of the {@code keep} highest scores, ascending; on a tie the lower index is kept
   * (a stable descending order), so the choice is deterministic.
   */
  public static int[] topIndices(double[] scores, int keep) {
    ValidationException.check(keep >= 1 && keep <= scores.length, "Cannot keep %d of %d structures", keep, scores.length);
    boolean[] kept = new boolean[scores.length];
    for (int i = 0; i < keep; i++) {
      int best = -1;
      for (int j = 0; j < scores.length; j++) {
        if (!kept[j] && (best < 0 || scores[j] > scores[best])) {
          best = j;
        }
      }
      kept[best] = true;
    }
    int[] indices = new int[keep];
    for (int j = 0, n = 0; j < scores.length; j++) {
      if (kept[j]) {
        indices[n++] = j;
      }
    }
    return indices;
  }

  /** The L2 norm of each column of a row-major [rows x cols] weight. */
  public static double[] columnNorms(float[] w, int rows, int cols) {
    double[] squares = new double[cols];
    addColumnSquares(w, rows, cols, 1, squares);
    return sqrt(squares);
  }

  private static void addRowSquares(float[] w, int rows, int cols, int rowsPerEntry, double[] out) {
    for (int r = 0; r < rows; r++) {
      double sum = 0;
      for (int c = 0; c < cols; c++) {
        double x = w[r * cols + c];
        sum += x * x;
      }
      out[r / rowsPerEntry] += sum;
    }
  }

  private static void addColumnSquares(float[] w, int rows, int cols, int colsPerEntry, double[] out) {
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        double x = w[r * cols + c];
        out[c / colsPerEntry] += x * x;
      }
    }
  }

  private static double[] sqrt(double[] squares) {
    double[] out = new double[squares.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = Math.sqrt(squares[i]);
    }
    return out;
  }

  private static void checkLength(float[] values, long expected, String what) {
    checkLength(values.length, expected, what);
  }

  private static void checkLength(long actual, long expected, String what) {
    ValidationException.check(actual == expected, "Invalid %s: %d values, expected %d", what, actual, expected);
  }
}
