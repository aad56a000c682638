package dev.sparkprune.jobs.eval;

import dev.sparkprune.jobs.calibration.CalibrationPass;
import dev.sparkprune.jobs.calibration.ExpertSharding;
import dev.sparkprune.jobs.calibration.SampleChunk;
import dev.sparkprune.jobs.calibration.SparkExecutors;
import dev.sparkprune.jobs.plan.CalibrationShape;
import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.jobs.plan.ExpertPlan;
import dev.sparkprune.jobs.plan.ExpertStatistics;
import dev.sparkprune.jobs.plan.PlanSettings;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.SerializableConfiguration;
import dev.sparkprune.jobs.spark.StagedRun;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Perplexity;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.archive.ModelArchive;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.TreeMap;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.SparkSession;
import scala.Tuple2;

/**
 * Perplexity on Spark through the calibration pass, for models whose MoE blocks no task can hold
 * whole: the {@link Perplexity#batches} (the in-process protocol's windows and batches) are the
 * pass's chunks; each block advances them on the executors, a block whose routed experts exceed
 * --expert-task-mb expert-parallel (attention, one expert group per task fed by a shuffle of its
 * routed tokens, outputs combined in ascending expert order); after the last block each batch's
 * per-window NLL comes back (a few doubles) and the driver sums them in window order. Every batch
 * runs the in-process steps in the same shapes and order, so the perplexity is the same bits as
 * {@link Perplexity#evaluate}. Memory per task: attention + one expert group + its routed tokens'
 * states; at the end, the final norm and lm_head.
 */
public final class PerplexityJob {
  private PerplexityJob() {}

  /** What came out: the perplexity and the blocks that ran expert-parallel. */
  public record Result(Perplexity perplexity, List<Integer> expertParallelBlocks) {}

  /**
   * @param expertTaskBytes the budget of an expert task in bytes (0: a quarter of a task's heap)
   * @param partitions the batches' partitions (0: Spark's parallelism)
   */
  public static Result run(SparkSession spark, ModelArchive archive, int[] corpus, int seqlen, int maxWindows, int batchSize,
      long expertTaskBytes, int partitions) throws IOException {
    List<int[][]> batches = Perplexity.batches(corpus, seqlen, maxWindows, batchSize);
    StagedRun run = StagedRun.start(spark, "eval", archive.location());
    return run.run(staged -> {
      JavaSparkContext jsc = staged.jsc();
      // Nothing is staged: the run id only keys the executors' cache of decoded blocks.
      JobContext context = new JobContext(archive.location(), "eval-" + staged.runId(),
          jsc.broadcast(new SerializableConfiguration(spark.sparkContext().hadoopConfiguration())),
          spark.sparkContext().conf().getInt("spark.task.cpus", 1), staged.probe());
      JobStages stages = new JobStages(jsc, context, Optional.empty());
      int slices = partitions > 0 ? partitions : jsc.defaultParallelism();
      List<Tuple2<Integer, int[][]>> chunks = new ArrayList<>();
      for (int i = 0; i < batches.size(); i++) {
        chunks.add(new Tuple2<>(i, batches.get(i)));
      }
      ExpertSharding sharding = ExpertSharding.of(expertPlan(archive, batches, seqlen, expertTaskBytes, SparkExecutors.of(jsc), slices));
      int blocks = Architectures.layout(archive).blocks().size();
      TreeMap<Integer, double[]> nll = new TreeMap<>();
      try (CalibrationPass pass = CalibrationPass.embedBatches(stages, chunks, slices, blocks, sharding)) {
        for (int b = 0; b < blocks; b++) {
          pass.advance();
        }
        stages.describe("perplexity: final norm, lm_head, NLL");
        for (Tuple2<Integer, double[]> batch : pass.states().mapPartitions(new BatchNll(context)).collect()) {
          nll.put(batch._1(), batch._2());
        }
      }
      return new Result(Perplexity.of(new ArrayList<>(nll.values()), seqlen), List.copyOf(sharding.blocks()));
    });
  }

  /**
   * The expert plan of an evaluation over {@code batches} on {@code slices} partitions: routed
   * tokens only, no statistics. The same before Spark starts (to refuse an expert task that cannot
   * fit, {@link ExpertPlan#checkFits}) and in the job (to shard).
   */
  public static ExpertPlan expertPlan(ModelArchive archive, List<int[][]> batches, int seqlen, long expertTaskBytes, ExecutorShape executors,
      int slices) {
    int windows = 0;
    for (int[][] batch : batches) {
      windows += batch.length;
    }
    CalibrationShape shape = new CalibrationShape(windows, seqlen, Math.max(1, Math.min(slices, batches.size())));
    PlanSettings settings = new PlanSettings(shape, ExpertStatistics.NONE, InputHook.ExpertInputs.ROUTED, expertTaskBytes, executors);
    return ExpertPlan.of(Architectures.layout(archive), archive.config(), settings);
  }

  /** Each batch's per-window mean NLL from its last hidden states (the model's final norm and lm_head). */
  static final class BatchNll implements FlatMapFunction<Iterator<SampleChunk>, Tuple2<Integer, double[]>> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;

    BatchNll(JobContext context) {
      this.context = context;
    }

    @Override
    public Iterator<Tuple2<Integer, double[]>> call(Iterator<SampleChunk> batches) throws IOException {
      List<Tuple2<Integer, double[]>> out = new ArrayList<>();
      if (!batches.hasNext()) {
        return out.iterator();
      }
      try (DecoderModel model = context.openModel(context.backend().backend())) {
        while (batches.hasNext()) {
          SampleChunk batch = batches.next();
          out.add(new Tuple2<>(batch.index(), model.meanNll(batch.hidden(), batch.tokens())));
        }
      }
      return out.iterator();
    }
  }
}
