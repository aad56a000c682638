package dev.sparkprune.jobs.plan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The expert plan from headers: groups cut by bytes in expert order, and per-expert bytes and
 * shuffle sizes equal to the formulas worked out here from the fixtures' config.json numbers.
 */
class TestExpertPlan {
  private static final CalibrationShape CALIBRATION = new CalibrationShape(32, 64, 2);
  private static final ExecutorShape EXECUTOR = new ExecutorShape(1L << 30, 2);

  private static ModelArchive archive(String arch) throws IOException {
    return ModelArchive.open(new LocalFileIO(), ModelFixtures.path(arch).toString());
  }

  private static ExpertPlan plan(String arch, ExpertStatistics statistics, InputHook.ExpertInputs inputs, long budget) throws IOException {
    ModelArchive archive = archive(arch);
    ModelLayout layout = Architectures.layout(archive);
    return ExpertPlan.of(layout, archive.config(), new PlanSettings(CALIBRATION, statistics, inputs, budget, EXECUTOR));
  }

  @Test
  void groupsAreContiguousRunsWithinTheBudgetAndAnExpertOverItIsAloneInItsGroup() {
    assertThat(ExpertPlan.groups(new long[] {3, 3, 3, 3, 3}, 7))
        .containsExactly(new ExpertGroup(0, 0, 2, 6), new ExpertGroup(1, 2, 4, 6), new ExpertGroup(2, 4, 5, 3));
    assertThat(ExpertPlan.groups(new long[] {2, 9, 2, 2}, 5))
        .containsExactly(new ExpertGroup(0, 0, 1, 2), new ExpertGroup(1, 1, 2, 9), new ExpertGroup(2, 2, 4, 4));
    assertThat(ExpertPlan.groups(new long[] {3, 3, 3}, 9)).containsExactly(new ExpertGroup(0, 0, 3, 9));
    assertThatThrownBy(() -> ExpertPlan.groups(new long[] {1}, 0)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void anExpertCountsItsFloatWeightsAndTheMethodsStatisticsOfItsTwoInputs() throws IOException {
    // qwen3_moe: hidden 64, 8 experts of moe_intermediate 32, top-2, every block sparse.
    long weights = 4L * 3 * 64 * 32;
    long sums = 16L * 64 + 16L * 32;
    long gram = sums + 8L * 64 * 64 + 8L * 32 * 32;
    ExpertPlan wanda = plan("qwen3_moe", ExpertStatistics.CHANNEL_SUMS, InputHook.ExpertInputs.ROUTED, 3 * (weights + sums));
    for (BlockPlan block : wanda.blocks()) {
      assertThat(block.sparse()).isTrue();
      assertThat(block.groups()).containsExactly(
          new ExpertGroup(0, 0, 3, 3 * (weights + sums)), new ExpertGroup(1, 3, 6, 3 * (weights + sums)),
          new ExpertGroup(2, 6, 8, 2 * (weights + sums)));
      assertThat(block.sharded()).isTrue();
      assertThat(block.statisticsBytes()).isEqualTo(8 * sums);
      // 32 x 64 tokens, each to 2 experts: their rows (64 floats) and row indices out, their outputs back.
      assertThat(block.dispatchBytes()).isEqualTo(4L * 64 * 2048 * 2 + 4L * 2048 * 2);
      assertThat(block.returnBytes()).isEqualTo(4L * 64 * 2048 * 2);
    }
    ExpertPlan sparseGpt = plan("qwen3_moe", ExpertStatistics.GRAM_DOUBLE, InputHook.ExpertInputs.ROUTED, 2 * (weights + gram));
    assertThat(sparseGpt.block(0).groups()).hasSize(4).allSatisfy(group -> assertThat(group.bytes()).isEqualTo(2 * (weights + gram)));
    assertThat(sparseGpt.block(0).statisticsBytes()).isEqualTo(8 * gram);
  }

  @Test
  void everyTokenGoesToEveryGroupWithMoeCalibrationAll() throws IOException {
    long weights = 4L * 3 * 64 * 32;
    long sums = 16L * 64 + 16L * 32;
    ExpertPlan all = plan("qwen3_moe", ExpertStatistics.CHANNEL_SUMS, InputHook.ExpertInputs.ALL, 4 * (weights + sums));
    assertThat(all.block(0).groups()).hasSize(2);
    assertThat(all.block(0).dispatchBytes()).isEqualTo(4L * 64 * 2048 * 2 + 4L * 2048 * 2);
    ExpertPlan routed = plan("qwen3_moe", ExpertStatistics.CHANNEL_SUMS, InputHook.ExpertInputs.ROUTED, 4 * (weights + sums));
    // Every token's state to each group instead of each token's to its k = 2 experts: the same
    // here (2 groups, top-2), but the expert task holds every token rather than a quarter.
    assertThat(all.block(0).expertTaskBytes()).isGreaterThan(routed.block(0).expertTaskBytes());
  }

  @Test
  void aBudgetOverTheBlocksExpertsLeavesItUnshardedAndDenseBlocksHaveNoGroups() throws IOException {
    ExpertPlan plan = plan("deepseek_v3", ExpertStatistics.CHANNEL_SUMS, InputHook.ExpertInputs.ROUTED, 1L << 30);
    // first_k_dense_replace 1: block 0 is dense.
    assertThat(plan.block(0).sparse()).isFalse();
    assertThat(plan.block(0).groups()).isEmpty();
    assertThat(plan.block(0).shuffleBytes()).isZero();
    for (int b = 1; b < plan.blocks().size(); b++) {
      assertThat(plan.block(b).groups()).hasSize(1);
      assertThat(plan.sharded(b)).isFalse();
      assertThat(plan.block(b).maxTaskBytes()).isEqualTo(plan.block(b).blockTaskBytes());
    }
    // 16 experts of 3 x 192 x 48: one per group at a budget of one expert.
    long expert = 4L * 3 * 192 * 48 + 16L * 192 + 16L * 48;
    ExpertPlan sharded = plan("deepseek_v3", ExpertStatistics.CHANNEL_SUMS, InputHook.ExpertInputs.ROUTED, expert);
    assertThat(sharded.block(1).groups()).hasSize(16);
    // The expert task holds one expert, far less than the whole block.
    assertThat(sharded.block(1).expertTaskBytes()).isLessThan(sharded.block(1).blockTaskBytes());
  }

  @Test
  void gptOssFusedExpertsCountTheirSlicesAndBiases() throws IOException {
    // hidden 128, 8 experts of intermediate 96: gate_up [128 x 192] + bias 192, down [96 x 128] + bias 128.
    long expert = 4L * (128 * 192 + 192 + 96 * 128 + 128) + 16L * 128 + 16L * 96;
    ExpertPlan plan = plan("gpt_oss", ExpertStatistics.CHANNEL_SUMS, InputHook.ExpertInputs.ROUTED, 2 * expert);
    assertThat(plan.block(0).groups()).extracting(ExpertGroup::size).containsExactly(2, 2, 2, 2);
    assertThat(plan.block(0).groups().get(0).bytes()).isEqualTo(2 * expert);
  }

  @Test
  void theDerivedBudgetIsAQuarterOfATasksHeap() throws IOException {
    ExpertPlan plan = plan("mixtral", ExpertStatistics.NONE, InputHook.ExpertInputs.ROUTED, 0);
    assertThat(plan.budget()).isEqualTo((1L << 30) / 2 / 4);
    assertThat(new PlanSettings(CALIBRATION, ExpertStatistics.NONE, InputHook.ExpertInputs.ROUTED, 5, EXECUTOR).budget()).isEqualTo(5);
  }

  @Test
  void theCalibrationShapeFollowsTheChunkRule() {
    CalibrationShape shape = new CalibrationShape(100, 16, 3);
    // ceil(100 / 16) = 7 samples per chunk, 15 chunks (the last of 2 samples), 5 per partition.
    assertThat(CalibrationShape.chunkSize(100)).isEqualTo(7);
    assertThat(shape.chunks()).isEqualTo(15);
    assertThat(shape.chunkTokens()).isEqualTo(7 * 16);
    assertThat(shape.chunksPerPartition()).isEqualTo(5);
    assertThat(shape.foldLevels()).isEqualTo(4);
    assertThat(List.of(new CalibrationShape(1, 4, 8).usedPartitions(), new CalibrationShape(1, 4, 8).foldLevels())).containsExactly(1, 0);
  }

  @Test
  void theExecutorIsTheDriversJvmInLocalModeElseTheConfsExecutor() {
    java.util.Map<String, String> conf = java.util.Map.of("spark.executor.memory", "4g", "spark.executor.cores", "4", "spark.task.cpus", "2");
    java.util.function.Function<String, java.util.Optional<String>> lookup = key -> java.util.Optional.ofNullable(conf.get(key));
    assertThat(shape(ExecutorShape.of("local[3]", lookup, 900, 16))).containsExactly(900L, 1L, 1L);
    assertThat(shape(ExecutorShape.of("local[*]", lookup, 900, 16))).containsExactly(900L, 8L, 1L);
    assertThat(shape(ExecutorShape.of("local", lookup, 900, 16))).containsExactly(900L, 1L, 1L);
    assertThat(shape(ExecutorShape.of("local-cluster[2, 3, 1024]", lookup, 900, 16))).containsExactly(1L << 30, 1L, 2L);
    // 4 cores over 2 CPUs per task: two tasks of 2 GiB; instances unset: unknown.
    assertThat(shape(ExecutorShape.of("yarn", lookup, 900, 16))).containsExactly(4L << 30, 2L, 0L);
    assertThat(shape(ExecutorShape.of("spark://h:7077", key -> java.util.Optional.empty(), 900, 16))).containsExactly(1L << 30, 1L, 0L);
    assertThat(shape(ExecutorShape.of("local[3]", key -> java.util.Optional.empty(), 900, 16))).containsExactly(900L, 3L, 1L);
    assertThat(shape(ExecutorShape.of("k8s://h", key -> java.util.Optional.ofNullable(java.util.Map.of("spark.executor.memory", "2048").get(key)), 900, 16)))
        .containsExactly(2L << 30, 1L, 0L);
  }

  /** Heap, tasks at once and executors of a shape. */
  private static List<Long> shape(ExecutorShape executor) {
    return List.of(executor.memoryBytes(), (long) executor.cores(), (long) executor.executors());
  }

  @Test
  void aRunWhoseExpertTaskCannotFitATasksHeapIsRefused() throws IOException {
    ModelArchive archive = archive("qwen3_moe");
    ModelLayout layout = Architectures.layout(archive);
    // One expert: 4 x 3 x 64 x 32 floats + 16 x (64 + 32) of Wanda sums = 26,112 bytes.
    ExpertPlan fits = ExpertPlan.of(layout, archive.config(),
        new PlanSettings(CALIBRATION, ExpertStatistics.CHANNEL_SUMS, InputHook.ExpertInputs.ROUTED, 0, new ExecutorShape(2 * 26_112, 2)));
    fits.checkFits();
    ExpertPlan tooSmall = ExpertPlan.of(layout, archive.config(),
        new PlanSettings(CALIBRATION, ExpertStatistics.CHANNEL_SUMS, InputHook.ExpertInputs.ROUTED, 0, new ExecutorShape(2 * 26_111, 2)));
    assertThatThrownBy(tooSmall::checkFits).isInstanceOf(dev.sparkprune.tensorio.ValidationException.class)
        .hasMessageStartingWith("Cannot calibrate model.layers.0: one routed expert with its statistics needs 26,112 bytes but a task has 26,111 bytes of heap (52,222 bytes per executor / 2 tasks)");
    ExpertPlan overBudget = ExpertPlan.of(layout, archive.config(),
        new PlanSettings(CALIBRATION, ExpertStatistics.CHANNEL_SUMS, InputHook.ExpertInputs.ROUTED, 3L << 20, new ExecutorShape(4L << 20, 2)));
    assertThatThrownBy(overBudget::checkFits).isInstanceOf(dev.sparkprune.tensorio.ValidationException.class)
        .hasMessage("Invalid --expert-task-mb 3: a task has 2 MB of heap (4 MB per executor / 2 tasks); set it to at most 2");
  }
}
