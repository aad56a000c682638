package dev.sparkprune.jobs.prune.allocation;

import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.prune.score.CalibratedScoring;
import dev.sparkprune.jobs.prune.output.LinearResult;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Locale;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.broadcast.Broadcast;

/**
 * OWL, outlier-weighted layerwise sparsity (Yin et al., "Outlier Weighed Layerwise Sparsity"):
 * a dense calibration pass gives each block's Wanda scores |W_ij| * sqrt(scaler_row_j); a
 * block's outlier ratio D_b is the percentage of its scores above M x their mean. The ratios are
 * rescaled to [0, 2 lambda], shifted so their mean is the target density 1 - s, and block b is
 * pruned to 1 - density_b (clamped to [0.01, 0.99]); for N:M, to the nearest N of M.
 */
public final class OwlAllocation implements Allocation {
  static final double MIN_SPARSITY = 0.01;
  static final double MAX_SPARSITY = 0.99;

  private final SparsityTarget target;
  private final double lambda;
  private final double m;

  OwlAllocation(SparsityTarget target, double lambda, double m) {
    this.target = target;
    this.lambda = lambda;
    this.m = m;
  }

  @Override
  public List<LinearResult> prune(CalibratedScoring scoring, List<PlannedLinear> plan) throws IOException {
    double[] ratios = outlierRatios(scoring, plan, scoring.denseChannelStatistics());
    SparsityTarget[] targets = targets(ratios, target, lambda);
    scoring.report().owl(lambda, m, ratios, targets);
    StringBuilder line = new StringBuilder();
    for (int b = 0; b < targets.length; b++) {
      line.append(b == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.1f%%->%s", ratios[b], targets[b]));
    }
    scoring.log().line("owl: outlier ratios and block targets %s", line);
    List<PlannedLinear> targeted = new ArrayList<>();
    plan.forEach(planned -> targeted.add(planned.with(planned.method, targets[planned.block()])));
    return scoring.prune(targeted);
  }

  /** Each block's outlier ratio D_b (percent), from its linears' Wanda scores on the dense statistics. */
  private double[] outlierRatios(CalibratedScoring scoring, List<PlannedLinear> plan, Map<String, CalibrationStatistics> statistics) {
    int blocks = scoring.blocks();
    JavaSparkContext jsc = scoring.stages().jsc();
    JobContext context = scoring.stages().context();
    Broadcast<Map<String, CalibrationStatistics>> broadcast = jsc.broadcast(statistics);
    JavaRDD<PlannedLinear> linears = jsc.parallelize(plan, Math.max(1, plan.size()));
    double[] sums = new double[blocks];
    long[] counts = new long[blocks];
    for (double[] moment : linears.map(new ScoreMoments(context, broadcast)).collect()) {
      sums[(int) moment[0]] += moment[1];
      counts[(int) moment[0]] += (long) moment[2];
    }
    double[] thresholds = new double[blocks];
    for (int b = 0; b < blocks; b++) {
      thresholds[b] = counts[b] == 0 ? 0 : m * sums[b] / counts[b];
    }
    long[] above = new long[blocks];
    for (long[] count : linears.map(new CountAbove(context, broadcast, thresholds)).collect()) {
      above[(int) count[0]] += count[1];
    }
    broadcast.destroy();
    double[] ratios = new double[blocks];
    for (int b = 0; b < blocks; b++) {
      ratios[b] = counts[b] == 0 ? 0 : 100.0 * above[b] / counts[b];
    }
    return ratios;
  }

  /** The OWL rule from outlier ratios to per-block targets. */
  public static SparsityTarget[] targets(double[] ratios, SparsityTarget target, double lambda) {
    int blocks = ratios.length;
    double min = Double.POSITIVE_INFINITY;
    double max = Double.NEGATIVE_INFINITY;
    for (double ratio : ratios) {
      min = Math.min(min, ratio);
      max = Math.max(max, ratio);
    }
    double[] density = new double[blocks];
    double mean = 0;
    for (int b = 0; b < blocks; b++) {
      density[b] = max > min ? (ratios[b] - min) / (max - min) * 2 * lambda : 0;
      mean += density[b] / blocks;
    }
    SparsityTarget[] targets = new SparsityTarget[blocks];
    for (int b = 0; b < blocks; b++) {
      double sparsity = 1 - (density[b] - mean + (1 - target.ratio()));
      sparsity = Math.min(MAX_SPARSITY, Math.max(MIN_SPARSITY, sparsity));
      if (target.isStructured()) {
        int groupSize = target.groupSize();
        int pruned = (int) Math.max(1, Math.min(groupSize - 1, Math.round(sparsity * groupSize)));
        targets[b] = SparsityTarget.nOfM(pruned, groupSize);
      } else {
        targets[b] = SparsityTarget.unstructured(sparsity);
      }
    }
    return targets;
  }

  /** {block, sum of scores, count} of one linear. */
  private static final class ScoreMoments implements Function<PlannedLinear, double[]> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final Broadcast<Map<String, CalibrationStatistics>> statistics;

    ScoreMoments(JobContext context, Broadcast<Map<String, CalibrationStatistics>> statistics) {
      this.context = context;
      this.statistics = statistics;
    }

    @Override
    public double[] call(PlannedLinear planned) throws IOException {
      double sum = 0;
      float[] scores = DenseStatistics.wandaScores(statistics.value(), planned, planned.read(context));
      for (float score : scores) {
        sum += score;
      }
      return new double[] {planned.block(), sum, scores.length};
    }
  }

  /** {block, scores above the block's threshold} of one linear. */
  private static final class CountAbove implements Function<PlannedLinear, long[]> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final Broadcast<Map<String, CalibrationStatistics>> statistics;
    private final double[] thresholds;

    CountAbove(JobContext context, Broadcast<Map<String, CalibrationStatistics>> statistics, double[] thresholds) {
      this.context = context;
      this.statistics = statistics;
      this.thresholds = thresholds;
    }

    @Override
    public long[] call(PlannedLinear planned) throws IOException {
      long above = 0;
      for (float score : DenseStatistics.wandaScores(statistics.value(), planned, planned.read(context))) {
        above += score > thresholds[planned.block()] ? 1 : 0;
      }
      return new long[] {planned.block(), above};
    }
  }
}
