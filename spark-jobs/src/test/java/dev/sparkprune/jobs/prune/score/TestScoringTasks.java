package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Grouping the Qwen3-MoE fixture's 28 x 3 small linears into scoring tasks by bytes. */
class TestScoringTasks {
  private static List<PlannedLinear> plan() throws IOException {
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), SharedData.path("fixtures/models/qwen3_moe").toString());
    List<PlannedLinear> plan = new ArrayList<>();
    for (Linear linear : Architectures.layout(archive).linears()) {
      plan.add(new PlannedLinear(linear, archive.tensor(linear.tensorName()), archive.quantization(), PruningMethod.WANDA, SparsityTarget.unstructured(0.5)));
    }
    return plan;
  }

  @Test
  void linearsFillTasksInPlanOrderUpToTheTargetBytes() throws IOException {
    List<PlannedLinear> plan = plan();
    assertThat(plan).hasSize(3 * (4 + 8 * 3));
    // q 128x64, k and v 64x64, o 64x128, experts 32x64 floats: 32 KiB, 16 KiB, 16 KiB, 32 KiB, 8 KiB each.
    long target = 64 << 10;
    List<List<PlannedLinear>> groups = ScoringTasks.group(plan, target, 1);
    List<PlannedLinear> flattened = new ArrayList<>();
    groups.forEach(flattened::addAll);
    assertThat(flattened).containsExactlyElementsOf(plan);
    for (List<PlannedLinear> group : groups) {
      long bytes = group.stream().mapToLong(ScoringTasks::bytes).sum();
      assertThat(bytes).isLessThanOrEqualTo(target);
    }
    long total = plan.stream().mapToLong(ScoringTasks::bytes).sum();
    assertThat(groups.size()).isLessThan(plan.size() / 4).isGreaterThanOrEqualTo((int) ((total + target - 1) / target));
    // Deterministic: the same plan and sizes give the same tasks.
    assertThat(ScoringTasks.group(plan, target, 1)).isEqualTo(groups);
    assertThat(ScoringTasks.taskIndex(groups).get(plan.get(0).tensorName())).isZero();
    assertThat(ScoringTasks.taskIndex(groups).get(plan.get(plan.size() - 1).tensorName())).isEqualTo(groups.size() - 1);
  }

  @Test
  void aSmallStageStillSpreadsOverTheClusterAndABigLinearIsATaskOfItsOwn() throws IOException {
    List<PlannedLinear> plan = plan();
    List<List<PlannedLinear>> spread = ScoringTasks.group(plan, 64L << 20, 4);
    assertThat(spread.size()).isBetween(4, 8);
    List<List<PlannedLinear>> single = ScoringTasks.group(plan.subList(0, 3), 1, 1);
    assertThat(single).hasSize(3).allSatisfy(group -> assertThat(group).hasSize(1));
    assertThat(ScoringTasks.group(plan.subList(0, 2), 64L << 20, 8)).hasSize(2);
  }
}
