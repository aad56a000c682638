package dev.sparkprune.scoring.structure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TestShrinkDecision {
  private static final LocalFileIO IO = new LocalFileIO();

  private static int[][] windows(int count, int length, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    int[][] tokens = new int[count][length];
    for (int[] sequence : tokens) {
      sequence[0] = 1;
      for (int t = 1; t < length; t++) {
        sequence[t] = 3 + random.nextInt(500);
      }
    }
    return tokens;
  }

  @Test
  void chunkedSummariesFoldToTheWholeBatchAndDecideFromIt() throws IOException {
    ModelArchive archive = ModelArchive.open(IO, SharedData.stories260K().toString());
    ModelShape shape = ModelShape.of(archive.config());
    int[][] all = windows(4, 32, 9);
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      ChunkSummary whole = ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, Map.of(0, all), 2));
      ChunkSummary folded = ChunkSummary.foldInOrder(StructureCalibration.run(
          model, shape, Map.of(1, java.util.Arrays.copyOfRange(all, 2, 4), 0, java.util.Arrays.copyOfRange(all, 0, 2)), 2));
      // Batch shapes differ (2 vs 4 samples), so BLAS may round differently: within a tolerance.
      assertThat(folded.depth().tokens()).isEqualTo(128);
      for (int b = 0; b < shape.blocks(); b++) {
        assertThat(folded.depth().blockInfluence(b)).isCloseTo(whole.depth().blockInfluence(b), within(1e-6));
        double[] wholeSquares = whole.blocks().get(b).statistics().downInputSumSquares();
        double[] foldedSquares = folded.blocks().get(b).statistics().downInputSumSquares();
        for (int j = 0; j < wholeSquares.length; j++) {
          assertThat(foldedSquares[j]).isCloseTo(wholeSquares[j], within(1e-4 * Math.max(1, wholeSquares[j])));
        }
      }

      ShrinkSettings settings = new ShrinkSettings(
          2, ShrinkSettings.LayerMetric.ANGULAR, 0.75, 0.75, ShrinkSettings.WidthMetric.ACTIVATION, 1, ExpertSaliency.Metric.REAP);
      ShrinkDecision decision = ShrinkDecision.choose(shape, settings, whole);
      assertThat(decision.droppedBlocks()).isEqualTo(whole.depth().dropByAngularDistance(2));
      assertThat(decision.plan().blocks()).hasSize(3);
      assertThat(decision.plan().intermediate()).isEqualTo(128);
      assertThat(decision.plan().kvHeads()).isEqualTo(3);
      // The activation-aware scores equal ‖X_j‖·‖W_down[:, j]‖ from the block's own weights.
      int kept = decision.plan().blocks().get(0).source();
      BlockWeights w = model.loadBlock(kept);
      double[] expected = WidthScores.mlpChannels(
          w.tensor("model.layers." + kept + ".mlp.down_proj.weight"), 64, 172, whole.blocks().get(kept).statistics().downInputSumSquares());
      assertThat(decision.mlpScores().get(kept)).containsExactly(expected, within(1e-12));
      assertThat(decision.plan().blocks().get(0).mlpChannels()).isEqualTo(WidthScores.topIndices(expected, 128));
    }
  }

  @Test
  void taylorLayerMetricDropsTheBlocksOfLowestRemovalImportanceButNeverTheLast() throws IOException {
    ModelArchive archive = ModelArchive.open(IO, SharedData.stories260K().toString());
    ModelShape shape = ModelShape.of(archive.config());
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      ChunkSummary summary = ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, Map.of(0, windows(2, 16, 3)), 2));
      ShrinkSettings settings = new ShrinkSettings(
          2, ShrinkSettings.LayerMetric.TAYLOR, 1, 1, ShrinkSettings.WidthMetric.ACTIVATION, 1, ExpertSaliency.Metric.REAP);
      assertThat(settings.needsGradients()).isTrue();
      // Block 4 has the lowest importance but is the last block: 3 and 1 go.
      double[] removal = {0.3, 0.1, 0.5, 0.2, 0.0};
      ShrinkDecision decision = ShrinkDecision.choose(shape, settings, summary, TaylorImportance.NONE.withBlockRemoval(removal));
      assertThat(decision.droppedBlocks()).containsExactly(1, 3);
      assertThat(decision.blockRemoval()).containsExactly(removal);
      assertThat(ShrinkDecision.choose(shape, settings(0, 0.75, 1), summary).blockRemoval()).isEmpty();
    }
    assertThat(ShrinkSettings.LayerMetric.parse("taylor")).isEqualTo(ShrinkSettings.LayerMetric.TAYLOR);
    assertThatThrownBy(() -> ShrinkSettings.LayerMetric.parse("cos")).isInstanceOf(ValidationException.class)
        .hasMessage("Invalid layer metric cos: use angular, block-influence or taylor");
  }

  @Test
  void badRequestsGetOneLineErrors() throws IOException {
    ModelShape dense = ModelShape.of(ModelArchive.open(IO, SharedData.stories260K().toString()).config());
    ModelShape mixtral = ModelShape.of(ModelArchive.open(IO, ModelFixtures.path("mixtral").toString()).config());
    assertThatThrownBy(() -> settings(5, 1, 1).checkAgainst(dense))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot drop 5 of 5 blocks: that removes every block; the last block is always kept, so drop at most 4");
    assertThatThrownBy(() -> settings(0, 1, 0.5).checkAgainst(dense))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot remove experts of llama: model_type llama has no experts");
    assertThatThrownBy(() -> settings(0, 0.5, 1).checkAgainst(mixtral))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot remove MLP channels of mixtral: it has no dense MLP blocks (remove whole experts instead)");
    assertThatThrownBy(() -> settings(0, 1, 1).checkAgainst(dense))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot shrink: nothing to remove; drop blocks, or keep fewer MLP channels, heads or experts");
    ModelShape qwen2Moe = ModelShape.of(ModelArchive.open(IO, ModelFixtures.path("qwen2_moe").toString()).config());
    assertThatThrownBy(() -> new ShrinkSettings(
            0, ShrinkSettings.LayerMetric.ANGULAR, 1, 0.5, ShrinkSettings.WidthMetric.ACTIVATION, 1, ExpertSaliency.Metric.REAP)
        .checkAgainst(qwen2Moe))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot remove attention heads of qwen2_moe: llama.cpp requires num_attention_heads x head_dim = hidden_size for"
            + " model_type qwen2_moe, so the shrunk archive would not load there; shrink the MLP, depth or experts instead");
    ModelShape deepseek = ModelShape.of(ModelArchive.open(IO, ModelFixtures.path("deepseek_v3").toString()).config());
    assertThatThrownBy(() -> new ShrinkSettings(
            0, ShrinkSettings.LayerMetric.ANGULAR, 1, 0.5, ShrinkSettings.WidthMetric.ACTIVATION, 1, ExpertSaliency.Metric.REAP)
        .checkAgainst(deepseek))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot remove attention heads of deepseek_v3: its multi-head latent attention projects every head's keys and values"
            + " from one latent; shrink depth, dense MLP width or experts instead");
    ModelShape gptOss = ModelShape.of(ModelArchive.open(IO, ModelFixtures.path("gpt_oss").toString()).config());
    assertThatThrownBy(() -> settings(1, 1, 0.5).checkAgainst(gptOss))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot drop 1 blocks of gpt_oss: its sliding-window and full-attention layers must keep alternating;"
            + " drop an even number");
    settings(2, 1, 0.5).checkAgainst(gptOss);
    assertThatThrownBy(() -> settings(0, 0, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid MLP keep fraction 0.0: give a fraction in (0, 1] of the structures to keep");
    assertThat(List.of(settings(1, 1, 1).maxSpan())).containsExactly(1);
  }

  private static ShrinkSettings settings(int drop, double mlpKeep, double expertsKeep) {
    return new ShrinkSettings(
        drop, ShrinkSettings.LayerMetric.ANGULAR, mlpKeep, 1, ShrinkSettings.WidthMetric.ACTIVATION, expertsKeep, ExpertSaliency.Metric.REAP);
  }
}
