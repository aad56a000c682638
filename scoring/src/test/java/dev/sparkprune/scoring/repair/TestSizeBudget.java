package dev.sparkprune.scoring.repair;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.ExpertSaliency;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.scoring.structure.StructureCalibration;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The size-budget search on stories260K: sizes equal the parameter counts of the shapes worked
 * out here by hand, the maximal candidates within a budget are exactly those no single step up
 * keeps within it (checked against the whole grid), the largest single-axis cuts are among them,
 * and a scored candidate is a pure function of its inputs (scored twice, the same bits).
 */
class TestSizeBudget {
  private static final LocalFileIO IO = new LocalFileIO();
  private static final ShrinkSettings METRICS = new ShrinkSettings(
      0, ShrinkSettings.LayerMetric.ANGULAR, 1, 1, ShrinkSettings.WidthMetric.ACTIVATION, 1, ExpertSaliency.Metric.REAP);

  @TempDir Path temp;

  @Test
  void maximalCandidatesAreTheLargestWithinTheBudgetAndScoreDeterministically() throws IOException {
    ModelArchive archive = ModelArchive.open(IO, SharedData.stories260K().toString());
    ModelShape shape = ModelShape.of(archive.config());
    int[][] windows = new int[4][32];
    for (int s = 0; s < windows.length; s++) {
      windows[s][0] = 1;
      for (int t = 1; t < 32; t++) {
        windows[s][t] = (37 * t + 11 * s) % 500 + 3;
      }
    }
    ChunkSummary summary;
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      summary = ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, Map.of(0, windows), 2));
    }
    List<ShrinkCandidate> grid = SizeBudget.grid(shape, 2, true);
    // Drops 0-2 x MLP 1, 7/8, 3/4, 5/8, 1/2 x KV groups 4, 3, 2 of 4, but the point that cuts nothing.
    assertThat(grid).hasSize(3 * 5 * 3 - 1).doesNotContain(new ShrinkCandidate(0, 1, 1, 1));
    List<CandidateScore> sized = new ArrayList<>();
    for (ShrinkCandidate candidate : grid) {
      sized.add(SizeBudget.size(archive, shape, summary, METRICS, candidate));
    }
    // By hand: a block holds q, o 64 x 64; k, v 32 x 64 (4 KV heads of 8); gate, up, down 64 x 172; two norms of 64.
    long block = 2L * 64 * 64 + 2L * 32 * 64 + 3L * 64 * 172 + 2 * 64;
    long outside = 512L * 64 + 64;
    CandidateScore dropOne = find(sized, new ShrinkCandidate(1, 1, 1, 1));
    assertThat(dropOne.parameters()).isEqualTo(outside + 4 * block);
    CandidateScore mlp = find(sized, new ShrinkCandidate(0, 0.75, 1, 1));
    // 3/4 of 172 rounds to 128 channels (a multiple of 8).
    assertThat(mlp.parameters()).isEqualTo(outside + 5 * (block - 3L * 64 * (172 - 128)));
    CandidateScore heads = find(sized, new ShrinkCandidate(0, 1, 0.5, 1));
    assertThat(heads.parameters()).isEqualTo(outside + 5 * (block - 2L * 32 * 64 - 2L * 16 * 64));

    double budget = 0.85;
    long limit = (long) Math.floor(budget * archive.totalParameters());
    List<CandidateScore> maximal = SizeBudget.maximal(sized, archive.totalParameters(), budget);
    assertThat(maximal).isNotEmpty().allSatisfy(score -> assertThat(score.parameters()).isLessThanOrEqualTo(limit));
    assertThat(maximal).contains(dropOne, mlp);
    // Against the whole grid: a cut within the budget is maximal iff no one-step-larger neighbour is within it.
    double[] mlpSteps = {1, 0.875, 0.75, 0.625, 0.5};
    double[] headSteps = {1, 0.75, 0.5};
    for (CandidateScore score : sized) {
      ShrinkCandidate c = score.candidate();
      if (score.parameters() > limit) {
        assertThat(maximal).doesNotContain(score);
        continue;
      }
      List<ShrinkCandidate> larger = new ArrayList<>();
      if (c.dropBlocks() > 0) {
        larger.add(new ShrinkCandidate(c.dropBlocks() - 1, c.mlpKeep(), c.headsKeep(), 1));
      }
      int m = indexOf(mlpSteps, c.mlpKeep());
      if (m > 0) {
        larger.add(new ShrinkCandidate(c.dropBlocks(), mlpSteps[m - 1], c.headsKeep(), 1));
      }
      int h = indexOf(headSteps, c.headsKeep());
      if (h > 0) {
        larger.add(new ShrinkCandidate(c.dropBlocks(), c.mlpKeep(), headSteps[h - 1], 1));
      }
      boolean expected = true;
      for (ShrinkCandidate up : larger) {
        // The point that cuts nothing is not a candidate.
        boolean neighbourCuts = up.dropBlocks() > 0 || up.mlpKeep() < 1 || up.headsKeep() < 1;
        if (neighbourCuts && find(sized, up).parameters() <= limit) {
          expected = false;
        }
      }
      assertThat(maximal.contains(score)).as("%s (%d parameters)", c, score.parameters()).isEqualTo(expected);
    }

    List<int[][]> chunks = List.of(new int[][] {windows[0], windows[1]}, new int[][] {windows[2]});
    List<int[][]> heldOut = List.<int[][]>of(new int[][] {windows[3]});
    RepairSettings repair = RepairSettings.DEFAULTS;
    String scratch = Files.createDirectories(temp.resolve("scratch")).toString();
    CandidateScore a = SizeBudget.evaluate(archive, shape, summary, METRICS, mlp.candidate(), repair, chunks, heldOut, IO, scratch,
        NetlibLinearAlgebra.defaultInstance());
    CandidateScore b = SizeBudget.evaluate(archive, shape, summary, METRICS, mlp.candidate(), repair, chunks, heldOut, IO, scratch,
        NetlibLinearAlgebra.defaultInstance());
    assertThat(a).isEqualTo(b);
    assertThat(a.parameters()).isEqualTo(mlp.parameters());
    assertThat(a.heldOutNll()).isFinite();
    assertThat(IO.listFiles(scratch)).isEmpty();
    assertThat(SizeBudget.best(List.of(a, new CandidateScore(dropOne.candidate(), dropOne.parameters(), dropOne.droppedBlocks(), a.heldOutNll() + 1, Double.NaN)))).isEqualTo(a);
    assertThatThrownBy(() -> SizeBudget.best(List.of()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot choose a configuration: no candidate fits the budget; raise the fraction of parameters to keep");
  }

  private static int indexOf(double[] steps, double value) {
    for (int i = 0; i < steps.length; i++) {
      if (steps[i] == value) {
        return i;
      }
    }
    throw new AssertionError(value);
  }

  private static CandidateScore find(List<CandidateScore> sized, ShrinkCandidate candidate) {
    return sized.stream().filter(s -> s.candidate().equals(candidate)).findFirst().orElseThrow();
  }
}
