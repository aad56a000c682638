package dev.sparkprune.jobs.shrink;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.structure.ExpertSaliency;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The size budget's sizes from headers (no Spark): parameters a token runs through on Mixtral,
 * the search depth, and a candidate task's memory bound against the shapes worked out by hand.
 */
class TestBudgetSearch {
  private static final LocalFileIO IO = new LocalFileIO();

  private static ShrinkOptions options(int nsamples, int seqlen, double fraction) {
    ShrinkSettings none = new ShrinkSettings(0, ShrinkSettings.LayerMetric.ANGULAR, 1, 1, ShrinkSettings.WidthMetric.ACTIVATION, 1,
        ExpertSaliency.Metric.REAP);
    return new ShrinkOptions(SharedData.stories260K().toString(), "out", "calib", nsamples, seqlen, 0, none, "", SparsityTarget.parse("0.5"),
        0, false, true, 0, new SizeTarget(SizeTarget.Kind.PARAMETERS, fraction));
  }

  @Test
  void activeParametersCountTopKOfEachBlocksExperts() throws IOException {
    ModelArchive archive = ModelArchive.open(IO, ModelFixtures.path("mixtral").toString());
    ModelShape shape = ModelShape.of(archive.config());
    // By hand: 3 blocks of attention 4096 + 2048 + 2048 + 4096, router 8 x 64, two norms, 8 experts of 3 x 64 x 96; untied head.
    long expert = 3L * 64 * 96;
    long block = 4096 + 2048 + 2048 + 4096 + 8 * 64 + 2 * 64 + 8 * expert;
    long total = 2L * 512 * 64 + 64 + 3 * block;
    assertThat(archive.totalParameters()).isEqualTo(total);
    SizeTarget active = new SizeTarget(SizeTarget.Kind.ACTIVE_PARAMETERS, 0.5);
    assertThat(BudgetSearch.counted(archive, shape, active)).isEqualTo(total - 3 * 6 * expert);
    assertThat(BudgetSearch.counted(archive, shape, new SizeTarget(SizeTarget.Kind.PARAMETERS, 0.5))).isEqualTo(total);
    // Keeping 4 of 8 experts halves the experts (and the router's rows), but a token still runs through top-2 of them.
    int[] four = {0, 1, 2, 3};
    ShrunkArchive half = new ShrunkArchive(archive, ShrinkPlan.of(shape, List.of(0, 1, 2), Map.of(), Map.of(), Map.of(0, four, 1, four, 2, four)));
    assertThat(half.parameters()).isEqualTo(total - 3 * 4 * expert - 3 * 4 * 64);
    assertThat(BudgetSearch.counted(half, active, shape)).isEqualTo(total - 3 * 6 * expert - 3 * 4 * 64);
  }

  @Test
  void searchDepthIsTheFewestBlocksThatMeetTheBudgetAlone() throws IOException {
    ModelArchive archive = ModelArchive.open(IO, SharedData.stories260K().toString());
    ModelShape shape = ModelShape.of(archive.config());
    // 32,832 outside the blocks, 45,440 per block: 4 blocks keep 82.5%, 3 keep 65.1%, 1 keeps 30.0%.
    assertThat(BudgetSearch.maxDrop(archive, shape, new SizeTarget(SizeTarget.Kind.PARAMETERS, 0.85))).isEqualTo(1);
    assertThat(BudgetSearch.maxDrop(archive, shape, new SizeTarget(SizeTarget.Kind.PARAMETERS, 0.7))).isEqualTo(2);
    assertThat(BudgetSearch.maxDrop(archive, shape, new SizeTarget(SizeTarget.Kind.PARAMETERS, 0.2))).as("at most all but one").isEqualTo(4);
  }

  @Test
  void candidateTaskMemoryIsBoundedByOneBlockAndTheWindowsStates() throws IOException {
    ModelArchive archive = ModelArchive.open(IO, SharedData.stories260K().toString());
    ModelShape shape = ModelShape.of(archive.config());
    ShrinkOptions options = options(64, 256, 0.7);
    // By hand: 64 + 16 held-out windows x 256 tokens x 64 for two models; outside the linears 260,032 - 5 x 45,312;
    // largest block 45,312 linear parameters; chunks of 4 windows (16 chunks); widest activation 172; widest refit input 172.
    long outside = 260_032 - 5 * 45_312L;
    long chunkTokens = 4 * 256;
    long floats = 2L * 80 * 256 * 64 + 2 * outside + 2 * 45_312 + chunkTokens * (4 * 64 + 2 * 172 + 2 * 172) + 256L * (outside / 64);
    long expected = 4 * floats + 12L * 172 * 172 + 8L * 172 * 64;
    assertThat(BudgetSearch.taskBytes(archive, shape, options)).isEqualTo(expected);

    ExecutorShape small = new ExecutorShape(310L << 20, 1, 1, "the executor memory", "test executors");
    assertThatThrownBy(() -> BudgetSearch.checkMemory(archive, shape, options, small))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot search --target-params 0.7: scoring a candidate holds about 15 MiB in one task (the hidden states of 80 calibration"
            + " and held-out windows x 256 tokens for two models, two blocks' weights, the embeddings twice and a refit's sums), over the 10"
            + " MiB each of 1 tasks has in an executor of 310 MiB (test executors); use fewer or shorter samples (--nsamples, --seqlen), or"
            + " more executor memory");
    BudgetSearch.checkMemory(archive, shape, options, new ExecutorShape(1L << 30, 1, 1, "the executor memory", "test executors"));
  }
}
