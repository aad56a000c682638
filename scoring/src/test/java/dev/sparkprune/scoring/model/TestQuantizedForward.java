package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.QuantizedFixtures;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The forward pass reads a block-scaled FP8 archive through {@link ArchiveWeights} without
 * knowing its storage: Mixtral stored as the FP8 releases store weights gives bit for bit the
 * logits of its dequantized float twin (and not those of the unquantized model).
 */
class TestQuantizedForward {
  private static final LocalFileIO IO = new LocalFileIO();

  @TempDir Path temp;

  private static float[] logits(Path archive, int[] tokens) throws IOException {
    try (DecoderModel model = Models.open(ModelArchive.open(IO, archive.toString()), NetlibLinearAlgebra.defaultInstance())) {
      return model.logits(model.forward(new int[][] {tokens}), 0);
    }
  }

  @Test
  void fp8MixtralRunsAsItsDequantizedTwin() throws IOException {
    Path fp8 = QuantizedFixtures.toFp8(ModelFixtures.path("mixtral"), temp.resolve("fp8"));
    ModelArchive archive = ModelArchive.open(IO, fp8.toString());
    assertThat(archive.tensors()).filteredOn(ArchiveTensor::isQuantized).hasSize(3 * (4 + 8 * 3));
    Path twin = QuantizedFixtures.dequantized(fp8, temp.resolve("twin"));
    int[] tokens = ModelFixtures.goldenTokens("mixtral");
    float[] quantized = logits(fp8, tokens);
    assertThat(quantized).isEqualTo(logits(twin, tokens));
    float[] golden = ModelFixtures.goldenLogits("mixtral");
    double worst = 0;
    for (int i = 0; i < golden.length; i++) {
      worst = Math.max(worst, Math.abs(quantized[i] - golden[i]));
    }
    // FP8 moves every weight by up to 1/16 of itself, so the logits do move (on this random
    // model by whole units once routing flips): the quantized weights are what ran.
    assertThat(worst).isGreaterThan(1e-2);
  }
}
