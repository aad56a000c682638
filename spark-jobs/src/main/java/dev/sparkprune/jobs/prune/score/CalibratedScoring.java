package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.PruneRun;
import dev.sparkprune.jobs.prune.calibration.BlockPartials;
import dev.sparkprune.jobs.prune.calibration.CalibrationPass;
import dev.sparkprune.jobs.prune.calibration.LinearInputStatistics;
import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.storage.StorageLevel;

/**
 * Where the scoring stage's statistics come from, for a plan whose targets are set: none
 * (magnitude), saved statistics (--stats), or the calibration pass, sequential (block b's
 * statistics from the model with blocks before it pruned) or one-shot (all from the dense
 * model, then every linear scored in one stage).
 */
public final class CalibratedScoring {
  private CalibratedScoring() {}

  public static List<LinearResult> prune(PruneRun run, List<PlannedLinear> plan) throws IOException {
    PruneOptions options = run.options();
    if (!run.inputs().needsCalibration) {
      List<LinearResult> results = run.scoring().withoutStatistics(plan);
      run.log().line("scored %d linears with %s (no calibration needed)", plan.size(), options.method().displayName());
      return results;
    }
    if (options.statistics().isPresent()) {
      String directory = options.statistics().get();
      List<String> keys = StatisticsFiles.checkManifest(run.io(), directory, run.modelFingerprint(), StatisticsFiles.hessianUser(options, plan));
      JavaPairRDD<String, CalibrationStatistics> saved =
          run.jsc().parallelize(keys, Math.max(1, keys.size())).mapToPair(new StatisticsFiles.Load(run.context(), directory));
      List<LinearResult> results = run.scoring().score(plan, saved);
      run.log().line("scored %d linears from the saved statistics in %s", plan.size(), directory);
      return results;
    }
    LinearInputStatistics visitor = new LinearInputStatistics(Scoring.hessianStorage(options, plan), options.moeCalibration());
    try (CalibrationPass pass = run.embed()) {
      return options.mode() == PruneOptions.Mode.SEQUENTIAL ? sequential(run, plan, pass, visitor) : oneShot(run, plan, pass, visitor);
    }
  }

  /** Block by block: statistics of block b on the model pruned up to b - 1, then block b scored. */
  private static List<LinearResult> sequential(PruneRun run, List<PlannedLinear> plan, CalibrationPass pass, LinearInputStatistics visitor) {
    List<LinearResult> results = new ArrayList<>();
    List<PlannedLinear> previous = List.of();
    for (int b = 0; b < run.blocks(); b++) {
      long start = System.nanoTime();
      List<PlannedLinear> blockPlan = ofBlock(plan, b);
      // One pass over the cached states: through pruned block b - 1, then block b's statistics.
      BlockPartials<CalibrationStatistics> statistics =
          b == 0 ? pass.collect(visitor) : pass.advanceThenCollect(StagedPrunedBlock.of(run.inputs().layout, b - 1, previous), visitor);
      run.stages().describe(String.format(Locale.ROOT, "block %d/%d: scoring", b + 1, run.blocks()));
      results.addAll(run.scoring().score(blockPlan, statistics));
      previous = blockPlan;
      blockDone(run, b, start, ", " + blockPlan.size() + " linears pruned");
    }
    return results;
  }

  /** Dense statistics of every block (one forward pass per block), then every linear in one scoring stage. */
  private static List<LinearResult> oneShot(PruneRun run, List<PlannedLinear> plan, CalibrationPass pass, LinearInputStatistics visitor)
      throws IOException {
    // Per-channel statistics come back to the driver block by block; X^T X stays distributed.
    Map<String, CalibrationStatistics> onDriver = new HashMap<>();
    List<JavaPairRDD<String, CalibrationStatistics>> distributed = new ArrayList<>();
    for (int b = 0; b < run.blocks(); b++) {
      long start = System.nanoTime();
      BlockPartials<CalibrationStatistics> statistics = pass.collectAndAdvance(visitor);
      if (visitor.foldOnDriver()) {
        onDriver.putAll(statistics.asMap());
      } else {
        JavaPairRDD<String, CalibrationStatistics> block = statistics.asRdd(run.jsc()).persist(StorageLevel.MEMORY_AND_DISK());
        block.count();
        distributed.add(block);
      }
      blockDone(run, b, start, "");
    }
    BlockPartials<CalibrationStatistics> all = visitor.foldOnDriver()
        ? BlockPartials.onDriver(onDriver)
        : BlockPartials.distributed(distributed.stream().reduce(JavaPairRDD::union).orElseThrow());
    if (run.options().saveStatistics()) {
      StatisticsFiles.save(run, all.asRdd(run.jsc()), visitor.storage());
    }
    run.stages().describe("scoring");
    List<LinearResult> results = run.scoring().score(plan, all);
    distributed.forEach(rdd -> rdd.unpersist(false));
    run.log().line("scored %d linears in one stage from dense statistics", plan.size());
    return results;
  }

  static List<PlannedLinear> ofBlock(List<PlannedLinear> plan, int block) {
    List<PlannedLinear> blockPlan = new ArrayList<>();
    for (PlannedLinear planned : plan) {
      if (planned.block() == block) {
        blockPlan.add(planned);
      }
    }
    return blockPlan;
  }

  private static void blockDone(PruneRun run, int block, long start, String what) {
    double seconds = (System.nanoTime() - start) / 1e9;
    run.report().block(block, seconds);
    run.log().line("block %d/%d: calibrated%s (%.1f s)", block + 1, run.blocks(), what, seconds);
  }
}
