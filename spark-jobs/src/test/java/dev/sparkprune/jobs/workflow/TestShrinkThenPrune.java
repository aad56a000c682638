package dev.sparkprune.jobs.workflow;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.jobs.shrink.ShrinkJob;
import dev.sparkprune.jobs.shrink.ShrinkOptions;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.structure.ExpertSaliency;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** shrink --then-prune: the shrink job's stages, then the prune job, published as one output. */
class TestShrinkThenPrune extends SparkTestBase {
  @TempDir Path dir;

  private static ShrinkOptions options(Path out, String thenPrune) {
    return new ShrinkOptions(
        SharedData.stories260K().toString(), out.toString(), SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(),
        8, 64, 3, new ShrinkSettings(1, ShrinkSettings.LayerMetric.ANGULAR, 1, 1, ShrinkSettings.WidthMetric.ACTIVATION, 1,
            ExpertSaliency.Metric.REAP), thenPrune, SparsityTarget.parse("0.5"), 2, false, false);
  }

  private static PrintStream quiet() {
    return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
  }

  @Test
  void thenPruneWritesThePrunedShrunkModelAndItsMasks() throws IOException {
    Path out = dir.resolve("pruned");
    new ShrinkThenPrune(spark, options(out, "wanda"), quiet()).run();
    assertThat(out.resolve("masks")).isDirectory();
    assertThat(out.resolve("prune-report.json")).exists();
    assertThat(out.resolve("shrunk")).doesNotExist();
    assertThat(out.resolve("pruned")).doesNotExist();
    ModelArchive pruned = ModelArchive.open(new LocalFileIO(), out.resolve("model").toString());
    assertThat(pruned.config().requireInt("num_hidden_layers")).isEqualTo(4);
    try (var reader = pruned.openShard("model.safetensors")) {
      float[] down = reader.readFloats("model.layers.2.mlp.down_proj.weight");
      long zeros = 0;
      for (float w : down) {
        zeros += w == 0 ? 1 : 0;
      }
      assertThat((double) zeros / down.length).isCloseTo(0.5, org.assertj.core.data.Offset.offset(0.01));
    }
  }

  @Test
  void eachJobRefusesTheOthersRequest() {
    assertThatThrownBy(() -> new ShrinkJob(spark, options(dir.resolve("a"), "wanda"), quiet()).run())
        .isInstanceOf(IllegalStateException.class).hasMessageContaining("--then-prune runs through workflow.ShrinkThenPrune");
    assertThatThrownBy(() -> new ShrinkThenPrune(spark, options(dir.resolve("b"), ""), quiet()))
        .isInstanceOf(IllegalArgumentException.class).hasMessage("Cannot shrink then prune: no --then-prune method");
  }
}
