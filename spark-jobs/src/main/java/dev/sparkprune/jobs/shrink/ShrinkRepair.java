package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.calibration.ChunkPartial;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.scoring.repair.LinearEquations;
import dev.sparkprune.scoring.repair.RepairSettings;
import dev.sparkprune.scoring.repair.RepairStep;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * The shrink job's least-squares repair ({@code --repair ls}), distributed: the steps of
 * {@code scoring}'s {@link dev.sparkprune.scoring.repair.SequentialRepair} (one rule,
 * {@link RepairStep#plan}), with the calibration chunks' dense and shrunk streams cached on the
 * executors and advanced one block per stage. Per refitted linear: each task gathers its chunks'
 * X^T X, X^T E and ‖E‖² ({@link LinearEquations}) and folds them over the fixed pairwise tree of
 * the chunks; one task folds the partitions' subtrees in chunk order, solves, and stages the
 * refitted tensor as a file. So the result is bit-identical on any partitioning, and equals the
 * in-process repair up to the order of the sums. Nothing weight-sized reaches the driver: only
 * each refit's residual figures.
 *
 * <p>Memory per executor: a partition's chunks, two streams of tokens × hidden floats each; per
 * refit task one linear's sums (in² + in × out doubles, log2(chunks) + 2 of them while folding)
 * and the solve.
 */
final class ShrinkRepair {
  private ShrinkRepair() {}

  /** One refit, for report.json: the shrunk block, its source block and the figures. */
  record Refit(int block, int sourceBlock, RepairFunctions.RefitFigures figures) {}

  /** Every refit in order, and the staged tensors as the archive writer's replacements. */
  record Outcome(List<Refit> refits, RepairFunctions.StagedRefits replacements) {}

  /**
   * @param unrepaired the unrepaired shrunk archive, already written (the shrunk stream's model)
   * @param refitFolder where the refitted tensors are staged
   */
  static Outcome run(
      JobStages stages, CalibrationSource calibration, ShrinkPlan plan, RepairSettings settings, String unrepaired, String refitFolder,
      ProgressLog log) {
    JobContext context = stages.context();
    List<Tuple2<Integer, int[][]>> chunks = calibration.chunks();
    int count = chunks.size();
    stages.describe("repair: embed " + count + " chunks");
    JavaRDD<RepairFunctions.ChunkStreams> states = stages.jsc().parallelize(chunks, calibration.partitions(stages.jsc()))
        .map(new RepairFunctions.Embed(context, unrepaired))
        .persist(StorageLevel.MEMORY_AND_DISK());
    Set<String> staged = new LinkedHashSet<>();
    List<Refit> refits = new ArrayList<>();
    int densePosition = 0;
    int pendingShrunk = -1;
    List<RepairStep> steps = RepairStep.plan(plan, settings);
    int last = -1;
    for (RepairStep step : steps) {
      last = step.refits() ? step.block() : last;
    }
    // Blocks after the last refit need no stream: the plan's steps up to it, in order.
    for (RepairStep step : steps.subList(0, last + 1)) {
      int denseTo = step.refits() ? step.targetBlock() : densePosition;
      if (pendingShrunk >= 0 || denseTo > densePosition) {
        stages.describe("repair: advance to block " + step.block());
        JavaRDD<RepairFunctions.ChunkStreams> next = states.mapPartitions(new RepairFunctions.Advance(
            context, unrepaired, refitFolder, staged, pendingShrunk, densePosition, denseTo), true)
            .persist(StorageLevel.MEMORY_AND_DISK());
        next.count();
        states.unpersist(false);
        states = next;
        densePosition = denseTo;
      }
      for (boolean attention : new boolean[] {true, false}) {
        if (attention ? !step.refitAttention() : !step.refitMlp()) {
          continue;
        }
        stages.describe("repair: refit block " + step.block() + (attention ? " o_proj" : " down_proj"));
        RepairFunctions.RefitFigures figures = states
            .mapPartitions(new RepairFunctions.Collect(context, unrepaired, refitFolder, staged, step.block(), attention, settings, count))
            .mapToPair(node -> new Tuple2<Integer, ChunkPartial<LinearEquations>>(0, node))
            .groupByKey(1)
            .map(new RepairFunctions.Solve(context, unrepaired, refitFolder, staged, step, attention, settings, count))
            .collect()
            .get(0);
        staged.add(figures.tensor());
        refits.add(new Refit(step.block(), step.source(), figures));
        log.line("refitted %s: residual %.4g -> %.4g over %,d tokens", figures.tensor(), figures.errorBefore(), figures.errorAfter(),
            figures.tokens());
      }
      // The shrunk stream moves through this block, with its refits, before the next step's sums.
      pendingShrunk = step.block();
    }
    states.unpersist(false);
    return new Outcome(refits, new RepairFunctions.StagedRefits(context, refitFolder, staged));
  }
}
