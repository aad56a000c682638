package dev.sparkprune.scoring.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Which kept block refits what, against the rule written out by hand for each depth fit. */
class TestRepairStep {
  private static RepairSettings settings(RepairSettings.Target target, RepairSettings.DepthFit depth, RepairSettings.Scope scope) {
    return new RepairSettings(target, depth, scope, 0.01);
  }

  @Test
  void depthChangeGoesToThePrecedingTheNextOrBothBlocks() throws IOException {
    ModelShape shape = ModelShape.of(ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString()).config());
    // Blocks 2 and 3 of 5 dropped, no width cut: only the depth rule decides.
    ShrinkPlan depth = ShrinkPlan.of(shape, List.of(0, 1, 4), Map.of(), Map.of(), Map.of());
    // (block, source, targetBlock, o_proj, down_proj, map, local)
    assertThat(RepairStep.plan(depth, settings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.PRECEDING_COLUMNS, RepairSettings.Scope.CHANGED)))
        .containsExactly(
            new RepairStep(0, 0, 1, false, false, false, false),
            new RepairStep(1, 1, 4, false, true, false, false),
            new RepairStep(2, 4, 5, false, false, false, false));
    assertThat(RepairStep.plan(depth, settings(RepairSettings.Target.LOCAL, RepairSettings.DepthFit.PRECEDING_MAP, RepairSettings.Scope.CHANGED)))
        .containsExactly(
            new RepairStep(0, 0, 1, false, false, false, false),
            new RepairStep(1, 1, 4, false, true, true, false),
            new RepairStep(2, 4, 5, false, false, false, false));
    assertThat(RepairStep.plan(depth, settings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.NEXT, RepairSettings.Scope.CHANGED)))
        .containsExactly(
            new RepairStep(0, 0, 1, false, false, false, false),
            new RepairStep(1, 1, 2, false, false, false, false),
            new RepairStep(2, 4, 5, false, true, false, false));
    assertThat(RepairStep.plan(depth, settings(RepairSettings.Target.NORMALIZED, RepairSettings.DepthFit.BOTH, RepairSettings.Scope.CHANGED)))
        .containsExactly(
            new RepairStep(0, 0, 1, false, false, false, false),
            new RepairStep(1, 1, 4, false, true, false, false),
            new RepairStep(2, 4, 5, false, true, false, false));
    assertThat(RepairStep.plan(depth, settings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.BOTH, RepairSettings.Scope.ALL)))
        .allMatch(step -> step.refitAttention() && step.refitMlp());

    // Half the KV groups and 128 of 172 channels everywhere, block 3 dropped: every block refits both;
    // a local target applies where no depth change is taken, the map only before the run.
    int[] channels = new int[128];
    for (int j = 0; j < channels.length; j++) {
      channels[j] = j;
    }
    int[] groups = {1, 2};
    ShrinkPlan width = ShrinkPlan.of(shape, List.of(0, 1, 2, 4), Map.of(0, channels, 1, channels, 2, channels, 4, channels),
        Map.of(0, groups, 1, groups, 2, groups, 4, groups), Map.of());
    assertThat(RepairStep.plan(width, settings(RepairSettings.Target.LOCAL, RepairSettings.DepthFit.PRECEDING_MAP, RepairSettings.Scope.CHANGED)))
        .containsExactly(
            new RepairStep(0, 0, 1, true, true, false, true),
            new RepairStep(1, 1, 2, true, true, false, true),
            new RepairStep(2, 2, 4, true, true, true, false),
            new RepairStep(3, 4, 5, true, true, false, true));
  }

  @Test
  void sparseBlocksRefitOnlyTheirAttention() throws IOException {
    ModelShape shape = ModelShape.of(ModelArchive.open(new LocalFileIO(), ModelFixtures.path("qwen2_moe").toString()).config());
    assertThat(shape.isSparse(0)).isTrue();
    ShrinkPlan plan = ShrinkPlan.of(shape, List.of(0, 2), Map.of(), Map.of(), Map.of());
    // Block 0 precedes the dropped block 1: its o_proj takes the change; block 2 follows it (BOTH): its o_proj too.
    assertThat(RepairStep.plan(plan, RepairSettings.DEFAULTS))
        .containsExactly(new RepairStep(0, 0, 2, true, false, false, false), new RepairStep(1, 2, 3, true, false, false, false));
  }
}
