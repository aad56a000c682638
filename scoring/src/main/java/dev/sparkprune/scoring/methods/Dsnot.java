package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.Selection;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.Serializable;
import java.util.Arrays;

/**
 * DSnoT (Zhang et al., "Dynamic Sparse No Training: Training-Free Fine-tuning for Sparse LLMs",
 * ICLR 2024): refines a Wanda or RIA mask row by row by swapping a pruned weight back in
 * ("growing") for a kept one pruned, guided by the expected reconstruction error of the row,
 * without touching the kept weights' values.
 *
 * <p>Per output row, with the reference's ({@code zyxxmu/DSnoT}, {@code lib/prune.py}) names:
 * DSnoT_metric_j = W_j * sum_metric_row_j, where sum_metric_row = sum over tokens of x_j divided by
 * the number of sequences; the error = sum of DSnoT_metric over the pruned entries (the expected
 * output lost). While |error| > update_threshold and fewer than max_cycle_time cycles ran:
 *
 * <ul>
 *   <li>grow: among the pruned entries, ordered by DSnoT_metric / var^pow_of_var_regrowing, the
 *       largest when error > 0, else the smallest (each taken once);
 *   <li>prune (unstructured): among the entries the initial mask kept, ordered negatives by
 *       ascending Wanda score, then zeros, then positives by descending Wanda score, the first when
 *       error >= 0 and the last when error < 0 (so the least important weight whose metric pushes
 *       the error toward zero); N:M: the kept entry of the grown entry's group with the lowest Wanda
 *       score that the initial mask kept, and the swap is made only while the error keeps its
 *       initial sign (the reference's N:M rule);
 *   <li>swap the two and add DSnoT_metric(pruned) - DSnoT_metric(grown) to the error.
 * </ul>
 *
 * <p>A row stops for good at its first cycle that makes no swap. Differences from the reference,
 * all in edge cases it leaves undefined: var is the population variance over all calibration
 * tokens (the reference averages per-sample variances); when a row runs out of candidates it
 * stops (the reference would start re-pruning or re-growing entries); an N:M group with no
 * initially kept entry left skips that candidate. The paper's sparsity is kept exactly: every
 * swap grows one and prunes one.
 */
public final class Dsnot {
  /** The reference's defaults: 50 cycles, update threshold 0.1, variance power 1. */
  public static final Settings DEFAULTS = new Settings(50, 0.1, 1.0);

  /** Knobs with the reference's meaning: max_cycle_time, update_threshold, pow_of_var_regrowing. */
  public record Settings(int maxCycles, double updateThreshold, double varPower) implements Serializable {
    public Settings {
      ValidationException.check(maxCycles >= 0, "Invalid DSnoT cycles %d: must be >= 0", maxCycles);
      ValidationException.check(
          updateThreshold >= 0 && Double.isFinite(updateThreshold), "Invalid DSnoT update threshold %s: must be >= 0", updateThreshold);
      ValidationException.check(varPower >= 0 && Double.isFinite(varPower), "Invalid DSnoT variance power %s: must be >= 0", varPower);
    }
  }

  private Dsnot() {}

  /**
   * DSnoT as a step after a method: refines the previous step's mask from the statistics. The
   * swaps are sequential per row on the host, so the backend is not used.
   */
  public static PostStep step(Settings settings) {
    return (inputs, previous, target, backend, threads) -> refine(
        inputs.layer(), inputs.weights(), previous.mask(), inputs.requireStatistics("refine", "DSnoT"), target, settings, threads);
  }

  /** Refines {@code initial} with the statistics' scaler_row, per-channel sums and variance. */
  public static PruneResult refine(
      String layer, Weights weights, Mask initial, CalibrationStatistics statistics, SparsityTarget target, Settings settings,
      int threads) {
    int n = weights.cols();
    ValidationException.check(
        statistics.channels() == n,
        "Cannot refine layer %s with DSnoT: statistics cover %d input channels but the weight has %d", layer, statistics.channels(), n);
    double[] sums = statistics.channelSums("DSnoT on layer " + layer);
    double[] squares = statistics.sumSquares();
    float[] sumMetricRow = new float[n];
    float[] variance = new float[n];
    for (int j = 0; j < n; j++) {
      sumMetricRow[j] = (float) (sums[j] / statistics.sequences());
      double mean = sums[j] / statistics.tokens();
      variance[j] = (float) Math.max(0, squares[j] / statistics.tokens() - mean * mean);
    }
    return refine(layer, weights, initial, statistics.scalerRow(), sumMetricRow, variance, target, settings, threads);
  }

  /**
   * @param scalerRow Wanda's per-channel sum of x^2 / sequences (the pruning order)
   * @param sumMetricRow per-channel sum of x / sequences
   * @param variance per-channel variance of x over the tokens
   */
  public static PruneResult refine(
      String layer, Weights weights, Mask initial, float[] scalerRow, float[] sumMetricRow, float[] variance,
      SparsityTarget target, Settings settings, int threads) {
    weights.checkFinite(layer, threads);
    int rows = weights.rows();
    int n = weights.cols();
    ValidationException.check(
        initial.rows() == rows && initial.cols() == n,
        "Cannot refine layer %s with DSnoT: the mask is [%d, %d] but the weight is [%d, %d]", layer, initial.rows(), initial.cols(), rows, n);
    ValidationException.check(
        sumMetricRow.length == n && variance.length == n,
        "Cannot refine layer %s with DSnoT: channel means and variances cover %d and %d channels but the weight has %d",
        layer, sumMetricRow.length, variance.length, n);
    target.checkFits(layer, n);
    float[] norms = RowMasks.channelNorms(layer, "DSnoT", scalerRow, n);
    float[] w = weights.values();
    float[] out = new float[w.length];
    int rowBytes = Mask.rowBytes(n);
    byte[] bits = initial.bits();
    RowParallel.forEach(rows, threads, (start, end) -> {
      Row row = new Row(n);
      for (int r = start; r < end; r++) {
        row.refine(w, r * n, norms, sumMetricRow, variance, bits, r * rowBytes, target, settings);
        Selection.applyRow(Arrays.copyOfRange(bits, r * rowBytes, (r + 1) * rowBytes), w, r * n, out, r * n, n);
      }
    });
    return PruneResult.masked(Mask.fromBits(rows, n, bits), out);
  }

  /** Per-thread scratch for one row at a time. */
  private static final class Row {
    private final float[] metric;
    private final float[] wanda;
    private final long[] order;
    private final int[] grow;
    private final int[] prune;
    private final boolean[] initiallyKept;

    Row(int n) {
      metric = new float[n];
      wanda = new float[n];
      order = new long[n];
      grow = new int[n];
      prune = new int[n];
      initiallyKept = new boolean[n];
    }

    void refine(
        float[] w, int from, float[] norms, float[] sumMetricRow, float[] variance, byte[] keep, int keepOffset,
        SparsityTarget target, Settings settings) {
      int n = metric.length;
      double error = 0;
      int growCount = 0;
      for (int j = 0; j < n; j++) {
        metric[j] = w[from + j] * sumMetricRow[j];
        wanda[j] = Math.abs(w[from + j]) * norms[j] + 0f;
        initiallyKept[j] = Selection.isKept(keep, keepOffset, j);
        if (!initiallyKept[j]) {
          error += metric[j];
          float ratio = metric[j] / (float) Math.pow(variance[j], settings.varPower());
          // A constant channel (variance 0) with mean 0 contributes nothing: rank it with the zeros.
          order[growCount++] = sortKey(Float.isNaN(ratio) ? 0f : ratio, j);
        }
      }
      Arrays.sort(order, 0, growCount);
      for (int i = 0; i < growCount; i++) {
        grow[i] = (int) order[i];
      }
      int growLow = 0;
      int growHigh = growCount - 1;
      if (target.isStructured()) {
        double initialSign = Math.signum(error);
        for (int cycle = 0; cycle < settings.maxCycles() && Math.abs(error) > settings.updateThreshold() && growLow <= growHigh; cycle++) {
          int grown = error > 0 ? grow[growHigh--] : grow[growLow++];
          int groupStart = grown - grown % target.groupSize();
          int pruned = -1;
          for (int j = groupStart; j < groupStart + target.groupSize(); j++) {
            if (initiallyKept[j] && Selection.isKept(keep, keepOffset, j) && (pruned < 0 || wanda[j] < wanda[pruned])) {
              pruned = j;
            }
          }
          if (pruned < 0) {
            continue;
          }
          double after = error + metric[pruned] - metric[grown];
          if (Math.signum(after) != initialSign) {
            break;
          }
          swap(keep, keepOffset, pruned, grown);
          error = after;
        }
        return;
      }
      int pruneCount = pruneOrder(n);
      int pruneLow = 0;
      int pruneHigh = pruneCount - 1;
      for (int cycle = 0; cycle < settings.maxCycles() && Math.abs(error) > settings.updateThreshold()
          && growLow <= growHigh && pruneLow <= pruneHigh; cycle++) {
        int grown = error > 0 ? grow[growHigh--] : grow[growLow++];
        int pruned = error < 0 ? prune[pruneHigh--] : prune[pruneLow++];
        swap(keep, keepOffset, pruned, grown);
        error += metric[pruned] - metric[grown];
      }
    }

    /** The kept entries: negatives by ascending Wanda score, zeros, then positives by descending score; returns the count. */
    private int pruneOrder(int n) {
      int count = 0;
      for (int j = 0; j < n; j++) {
        if (initiallyKept[j]) {
          order[count++] = sortKey(wanda[j], j);
        }
      }
      Arrays.sort(order, 0, count);
      int size = 0;
      for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < count; i++) {
          int j = (int) order[i];
          if (pass == 0 ? metric[j] < 0 : metric[j] == 0) {
            prune[size++] = j;
          }
        }
      }
      for (int i = count - 1; i >= 0; i--) {
        int j = (int) order[i];
        if (metric[j] > 0) {
          prune[size++] = j;
        }
      }
      return size;
    }

    private static void swap(byte[] keep, int keepOffset, int pruned, int grown) {
      Selection.prune(keep, keepOffset, pruned);
      keep[keepOffset + (grown >>> 3)] |= (byte) (1 << (grown & 7));
    }

    /** Sorts as (value, column) ascending: the order-preserving key with its sign bit flipped, then the column. */
    private static long sortKey(float value, int column) {
      return ((long) (Selection.key(value + 0f) ^ 0x80000000) << 32) | column;
    }
  }
}
