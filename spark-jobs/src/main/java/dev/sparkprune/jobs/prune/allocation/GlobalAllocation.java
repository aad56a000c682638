package dev.sparkprune.jobs.prune.allocation;

import dev.sparkprune.jobs.prune.score.CalibratedScoring;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.jobs.prune.plan.Placement;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.prune.output.LinearResult;
import dev.sparkprune.jobs.prune.output.StagedTensors;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.allocation.GlobalThreshold;
import dev.sparkprune.scoring.allocation.Lamp;
import dev.sparkprune.scoring.allocation.ScoreHistogram;
import dev.sparkprune.scoring.allocation.ThresholdMask;
import dev.sparkprune.tensorio.quant.Requantization;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.api.java.function.PairFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * One threshold over the scores of every linear (magnitude or LAMP), computed without shipping
 * scores to the driver: executors score each layer once, building its sparse coarse histogram in
 * the same pass, and cache the scores; the driver picks the boundary bucket from the coarse
 * histograms and gets fine histograms of that bucket (the one extra pass, over cached scores),
 * and so finds the exact threshold; the pruning pass then cuts every layer at it, keeping at
 * least {@code --min-keep} of each.
 */
public final class GlobalAllocation implements Allocation {
  /** LAMP's normalized squares rather than |W| (or Wanda's scores). */
  private final boolean lamp;
  /** Wanda's scores, from a dense calibration pass, rather than |W|. */
  private final boolean wandaScores;
  private final SparsityTarget target;
  private final double minKeep;

  GlobalAllocation(boolean lamp, boolean wandaScores, SparsityTarget target, double minKeep) {
    this.lamp = lamp;
    this.wandaScores = wandaScores;
    this.target = target;
    this.minKeep = minKeep;
  }

  @Override
  public List<LinearResult> prune(CalibratedScoring scoring, List<PlannedLinear> plan) {
    // Wanda's scores compare activations too: a dense calibration pass first.
    Map<String, CalibrationStatistics> wanda = wandaScores ? scoring.denseChannelStatistics() : null;
    scoring.stages().describe(lamp ? "lamp allocation" : "global allocation");
    JavaSparkContext jsc = scoring.stages().jsc();
    JobContext context = scoring.stages().context();
    long prunable = 0;
    long maxPruned = 0;
    for (PlannedLinear planned : plan) {
      long numel = planned.linear.parameters();
      prunable += numel;
      maxPruned += numel - (long) Math.ceil(minKeep * numel);
    }
    dev.sparkprune.tensorio.ValidationException.check(
        (long) (prunable * target.ratio()) <= maxPruned,
        "Cannot reach sparsity %s with --min-keep %s: at most %.2f%% of the prunable weights can be pruned",
        target,
        minKeep,
        100.0 * maxPruned / prunable);
    // Scores are computed once, with their coarse histogram, and cached on the executors.
    JavaPairRDD<String, LayerScores> scores = jsc.parallelize(plan, Math.max(1, plan.size()))
        .mapToPair(new ComputeScores(context, lamp, wanda == null ? null : jsc.broadcast(new HashMap<>(wanda))))
        .persist(StorageLevel.MEMORY_AND_DISK_SER());

    Map<String, ScoreHistogram> coarse = scores.mapValues(new Coarse()).collectAsMap();
    long[] caps = new long[plan.size()];
    long total = 0;
    List<ScoreHistogram> coarseInOrder = new ArrayList<>();
    long bytes = 0;
    for (int l = 0; l < plan.size(); l++) {
      long numel = plan.get(l).linear.parameters();
      caps[l] = numel - (long) Math.ceil(minKeep * numel);
      total += numel;
      ScoreHistogram histogram = coarse.get(plan.get(l).tensorName());
      coarseInOrder.add(histogram);
      bytes += histogram.bytes();
    }
    long pruned = (long) (total * target.ratio());
    int boundary = GlobalThreshold.boundaryBucket(coarseInOrder, caps, pruned);
    Map<String, ScoreHistogram> fine = scores.mapValues(new Fine(boundary)).collectAsMap();
    long[] below = new long[plan.size()];
    List<ScoreHistogram> fineInOrder = new ArrayList<>();
    for (int l = 0; l < plan.size(); l++) {
      below[l] = coarseInOrder.get(l).countAtOrBelow(boundary - 1);
      ScoreHistogram histogram = fine.get(plan.get(l).tensorName());
      fineInOrder.add(histogram);
      bytes += histogram.bytes();
    }
    int key = GlobalThreshold.thresholdKey(boundary, fineInOrder, below, caps, pruned);

    Map<String, PlannedLinear> byName = new HashMap<>();
    Map<String, Long> capsByName = new HashMap<>();
    for (int l = 0; l < plan.size(); l++) {
      byName.put(plan.get(l).tensorName(), plan.get(l));
      capsByName.put(plan.get(l).tensorName(), caps[l]);
    }
    Broadcast<Map<String, PlannedLinear>> planBroadcast = jsc.broadcast(byName);
    Broadcast<Map<String, Long>> capsBroadcast = jsc.broadcast(capsByName);
    List<LinearResult> results = scoring.emit(scores.map(new PruneAtThreshold(context, planBroadcast, capsBroadcast, key)));
    scores.unpersist(false);
    float threshold = GlobalThreshold.value(key);
    scoring.report().allocation(lamp ? "lamp" : "global", minKeep, threshold, bytes);
    scoring.log().line("%s allocation: threshold %s over %d linears, %,d bytes of histograms to the driver", lamp ? "lamp" : "global", threshold,
        plan.size(), bytes);
    return results;
  }

  /** A layer's cached scores and the coarse histogram built in the same pass. */
  public static final class LayerScores implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    final float[] scores;
    public final ScoreHistogram coarse;

    public LayerScores(float[] scores) {
      this.scores = scores;
      this.coarse = ScoreHistogram.coarse(scores);
    }
  }

  /** A layer's scores: |W|, LAMP's normalized squares, or Wanda's |W| sqrt(scaler_row). */
  private static final class ComputeScores implements PairFunction<PlannedLinear, String, LayerScores> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final boolean lamp;
    private final Broadcast<Map<String, CalibrationStatistics>> wanda;

    ComputeScores(JobContext context, boolean lamp, Broadcast<Map<String, CalibrationStatistics>> wanda) {
      this.context = context;
      this.lamp = lamp;
      this.wanda = wanda;
    }

    @Override
    public Tuple2<String, LayerScores> call(PlannedLinear planned) throws IOException {
      float[] weights = read(context, planned);
      if (wanda != null) {
        return new Tuple2<>(planned.tensorName(), new LayerScores(DenseStatistics.wandaScores(wanda.value(), planned, weights)));
      }
      float[] scores;
      if (lamp) {
        scores = Lamp.scores(weights);
      } else {
        scores = new float[weights.length];
        for (int i = 0; i < weights.length; i++) {
          scores[i] = Math.abs(weights[i]);
        }
      }
      return new Tuple2<>(planned.tensorName(), new LayerScores(scores));
    }
  }

  /** The linear's weights, refusing NaN and infinities as the kernels do. */
  static float[] read(JobContext context, PlannedLinear planned) throws IOException {
    float[] values = planned.read(context);
    Weights.of((int) planned.linear.outFeatures(), (int) planned.linear.inFeatures(), values).checkFinite(planned.tensorName(), 1);
    return values;
  }

  private static final class Coarse implements Function<LayerScores, ScoreHistogram> {
    private static final long serialVersionUID = 1L;

    @Override
    public ScoreHistogram call(LayerScores layer) {
      return layer.coarse;
    }
  }

  private static final class Fine implements Function<LayerScores, ScoreHistogram> {
    private static final long serialVersionUID = 1L;
    private final int boundary;

    Fine(int boundary) {
      this.boundary = boundary;
    }

    @Override
    public ScoreHistogram call(LayerScores layer) {
      return ScoreHistogram.fine(layer.scores, boundary);
    }
  }

  /** Prunes one layer against the global threshold, then stages it as uniform runs do. */
  private static final class PruneAtThreshold implements Function<Tuple2<String, LayerScores>, LinearResult> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final Broadcast<Map<String, PlannedLinear>> plan;
    private final Broadcast<Map<String, Long>> caps;
    private final int thresholdKey;

    PruneAtThreshold(
        JobContext context, Broadcast<Map<String, PlannedLinear>> plan, Broadcast<Map<String, Long>> caps, int thresholdKey) {
      this.context = context;
      this.plan = plan;
      this.caps = caps;
      this.thresholdKey = thresholdKey;
    }

    @Override
    public LinearResult call(Tuple2<String, LayerScores> layer) throws IOException {
      long start = System.nanoTime();
      PlannedLinear planned = plan.value().get(layer._1());
      float[] values = read(context, planned);
      Weights weights = Weights.of((int) planned.linear.outFeatures(), (int) planned.linear.inFeatures(), values);
      PruneResult result = ThresholdMask.prune(weights, layer._2().scores, thresholdKey, caps.value().get(layer._1()));
      Requantization written = StagedTensors.stage(context, planned, values, result);
      return new LinearResult(planned.block(), planned.linear.name(), planned.tensorName(), result.mask(), Double.NaN, Double.NaN,
          (System.nanoTime() - start) / 1e9, Placement.of(context.backend())).withStorage(planned.tensor().storageLabel(), written);
    }
  }
}
