package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.jobs.prune.output.LinearResult;
import dev.sparkprune.jobs.calibration.BlockPartials;
import dev.sparkprune.jobs.gradient.GradientSource;
import dev.sparkprune.jobs.prune.output.MaskWriter;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import scala.Tuple2;

/**
 * The scoring stage, the one place linears are pruned: tasks read each linear's weights,
 * prune them ({@link ScoreLinear}, or an allocation's own per-linear function), stage the
 * pruned tensor and emit its mask; {@link #emit} writes the masks and brings the driver the
 * figures only.
 */
public final class Scoring {
  private final JavaSparkContext jsc;
  private final JobContext context;
  private final JobStages stages;
  private final ScoringSettings settings;
  private final MaskWriter masks;
  private final GradientSource gradients;

  public Scoring(JobStages stages, ScoringSettings settings, MaskWriter masks) {
    this(stages, settings, masks, GradientSource.NONE);
  }

  private Scoring(JobStages stages, ScoringSettings settings, MaskWriter masks, GradientSource gradients) {
    this.stages = Objects.requireNonNull(stages, "stages is null");
    this.jsc = stages.jsc();
    this.context = stages.context();
    this.settings = Objects.requireNonNull(settings, "settings is null");
    this.masks = Objects.requireNonNull(masks, "masks is null");
    this.gradients = Objects.requireNonNull(gradients, "gradients is null");
  }

  /** The same stage whose tasks read each gradient method's statistic from {@code source}. */
  Scoring withGradients(GradientSource source) {
    return new Scoring(stages, settings, masks, source);
  }

  /** Linears whose methods need no statistics (magnitude). */
  List<LinearResult> withoutStatistics(List<PlannedLinear> linears) {
    return emit(unfold(linears).map(scoreLinear(null)));
  }

  /**
   * Scoring tasks of about --scoring-task-mb of weights each ({@link ScoringTasks}), a task
   * scoring its linears one at a time. Per-channel statistics (Wanda, RIA) are small: they are
   * broadcast. Hessians (SparseGPT) stay distributed: each goes to the task of every linear that
   * reads the same input. This one takes the statistics by key, distributed.
   */
  List<LinearResult> score(List<PlannedLinear> linears, JavaPairRDD<String, CalibrationStatistics> statistics) {
    // Decided by the method, not by probing the RDD: every action would rerun the block's forward pass.
    if (settings.hessianStorage(linears) == CalibrationStatistics.HessianStorage.NONE) {
      return score(linears, new HashMap<>(statistics.collectAsMap()));
    }
    List<List<PlannedLinear>> groups = ScoringTasks.group(linears, settings.taskBytes(), jsc.defaultParallelism());
    Map<String, PlannedLinear> byName = new HashMap<>();
    for (PlannedLinear planned : linears) {
      byName.put(planned.tensorName(), planned);
    }
    Broadcast<Map<String, PlannedLinear>> planBroadcast = jsc.broadcast(byName);
    JavaRDD<Tuple2<PlannedLinear, CalibrationStatistics>> tasks = statistics
        .flatMapToPair(new PerLinear(planBroadcast))
        .partitionBy(new LinearPartitioner(ScoringTasks.taskIndex(groups), groups.size()))
        .map(new WithPlan(planBroadcast));
    return emit(tasks.map(scoreLinear(null)));
  }

  /** With a calibration step's statistics, on the driver or distributed. */
  List<LinearResult> score(List<PlannedLinear> linears, BlockPartials<CalibrationStatistics> statistics) {
    return statistics.folded().isPresent() ? score(linears, statistics.folded().get()) : score(linears, statistics.asRdd(jsc));
  }

  /** With small per-channel statistics by key, already on the driver: broadcast to the scoring tasks. */
  private List<LinearResult> score(List<PlannedLinear> linears, Map<String, CalibrationStatistics> statistics) {
    Broadcast<Map<String, CalibrationStatistics>> channel = jsc.broadcast(new HashMap<>(statistics));
    try {
      return emit(unfold(linears).map(scoreLinear(channel)));
    } finally {
      channel.destroy();
    }
  }

  private JavaRDD<Tuple2<PlannedLinear, CalibrationStatistics>> unfold(List<PlannedLinear> linears) {
    List<List<PlannedLinear>> groups = ScoringTasks.group(linears, settings.taskBytes(), jsc.defaultParallelism());
    return jsc.parallelize(groups, Math.max(1, groups.size())).flatMap(new Unfold());
  }

  private ScoreLinear scoreLinear(Broadcast<Map<String, CalibrationStatistics>> channel) {
    return new ScoreLinear(context, channel, gradients, settings.wandaGroup(), settings.refinement(), settings.minExpertTokens());
  }

  /**
   * Runs the scoring stage: its tasks write the masks of the linears they scored and return the
   * driver's summaries (figures only), in one Spark job.
   */
  public List<LinearResult> emit(JavaRDD<LinearResult> scored) {
    return stages.onGpus(masks.writeStage(scored)).collect();
  }

  public ScoringSettings settings() {
    return settings;
  }

  /** The run's Spark side. */
  public JobStages stages() {
    return stages;
  }

  /** A statistics key's result, once for every linear that reads that input. */
  private static final class PerLinear implements org.apache.spark.api.java.function.PairFlatMapFunction<
      Tuple2<String, CalibrationStatistics>, String, CalibrationStatistics> {
    private static final long serialVersionUID = 1L;
    private final Broadcast<Map<String, PlannedLinear>> plan;

    PerLinear(Broadcast<Map<String, PlannedLinear>> plan) {
      this.plan = plan;
    }

    @Override
    public java.util.Iterator<Tuple2<String, CalibrationStatistics>> call(Tuple2<String, CalibrationStatistics> keyed) {
      List<Tuple2<String, CalibrationStatistics>> out = new ArrayList<>();
      for (PlannedLinear planned : plan.value().values()) {
        if (planned.statisticsKey().equals(keyed._1())) {
          out.add(new Tuple2<>(planned.tensorName(), keyed._2()));
        }
      }
      out.sort(java.util.Comparator.comparing(Tuple2::_1));
      return out.iterator();
    }
  }

  /** Attaches the plan row to a linear's statistics. */
  private static final class WithPlan implements org.apache.spark.api.java.function.Function<
      Tuple2<String, CalibrationStatistics>, Tuple2<PlannedLinear, CalibrationStatistics>> {
    private static final long serialVersionUID = 1L;
    private final Broadcast<Map<String, PlannedLinear>> plan;

    WithPlan(Broadcast<Map<String, PlannedLinear>> plan) {
      this.plan = plan;
    }

    @Override
    public Tuple2<PlannedLinear, CalibrationStatistics> call(Tuple2<String, CalibrationStatistics> keyed) {
      return new Tuple2<>(plan.value().get(keyed._1()), keyed._2());
    }
  }

  /** A task's linears, each without statistics (they come by broadcast, or are not needed). */
  private static final class Unfold implements org.apache.spark.api.java.function.FlatMapFunction<
      List<PlannedLinear>, Tuple2<PlannedLinear, CalibrationStatistics>> {
    private static final long serialVersionUID = 1L;

    @Override
    public java.util.Iterator<Tuple2<PlannedLinear, CalibrationStatistics>> call(List<PlannedLinear> group) {
      List<Tuple2<PlannedLinear, CalibrationStatistics>> out = new ArrayList<>();
      group.forEach(planned -> out.add(new Tuple2<>(planned, null)));
      return out.iterator();
    }
  }

  /** One partition per scoring task of {@link ScoringTasks}: a linear goes to its group's task. */
  private static final class LinearPartitioner extends org.apache.spark.Partitioner {
    private static final long serialVersionUID = 1L;
    private final Map<String, Integer> index;
    private final int tasks;

    LinearPartitioner(Map<String, Integer> index, int tasks) {
      this.index = new HashMap<>(index);
      this.tasks = Math.max(1, tasks);
    }

    @Override
    public int numPartitions() {
      return tasks;
    }

    @Override
    public int getPartition(Object key) {
      return index.get((String) key);
    }
  }
}
