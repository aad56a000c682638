package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import org.assertj.core.data.Offset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Gemma-2, Gemma-3 and Phi-3 fixtures of ../shared against golden logits of an independent
 * float64 forward pass that follows Hugging Face's modeling code, plus invariants that hold for
 * any weights: causality (a later token never changes earlier logits) and batching (a sequence
 * alone and in a batch agree within float tolerance; never bit-identity across shapes).
 */
class TestGemmaPhi3Fixtures {
  private static final LocalFileIO IO = new LocalFileIO();

  static Path fixture(String name) {
    return SharedData.path("fixtures/models/" + name);
  }

  static DecoderModel open(String name) throws IOException {
    return Models.open(ModelArchive.open(IO, fixture(name).toString()), NetlibLinearAlgebra.defaultInstance());
  }

  static int[] goldenTokens(String name) throws IOException {
    try (SafetensorsReader reader = SafetensorsReader.open(IO.newInputFile(fixture(name).resolve("golden.safetensors").toString()))) {
      TensorInfo info = reader.tensor("tokens");
      ByteBuffer bytes = ByteBuffer.wrap(reader.readRawRows(info, 0, (int) info.rows())).order(ByteOrder.LITTLE_ENDIAN);
      int[] tokens = new int[(int) info.numel()];
      for (int i = 0; i < tokens.length; i++) {
        tokens[i] = bytes.getInt();
      }
      return tokens;
    }
  }

  static float[] goldenLogits(String name) throws IOException {
    try (SafetensorsReader reader = SafetensorsReader.open(IO.newInputFile(fixture(name).resolve("golden.safetensors").toString()))) {
      return reader.readFloats("logits");
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"gemma2", "gemma3", "phi3"})
  void logitsMatchTheGoldenForwardPass(String name) throws IOException {
    int[] tokens = goldenTokens(name);
    float[] expected = goldenLogits(name);
    assertThat(tokens).hasSize(64);
    try (DecoderModel model = open(name)) {
      float[] logits = model.logits(model.forward(new int[][] {tokens}), 0);
      assertThat(logits).hasSameSizeAs(expected);
      double worst = 0;
      for (int i = 0; i < logits.length; i++) {
        worst = Math.max(worst, Math.abs(logits[i] - expected[i]));
      }
      assertThat(worst).as("%s: largest absolute logit difference", name).isLessThan(1e-4);
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"gemma2", "gemma3", "phi3"})
  void aLaterTokenNeverChangesEarlierLogitsAndBatchingAgreesWithinTolerance(String name) throws IOException {
    int[] tokens = goldenTokens(name);
    int[] changed = tokens.clone();
    changed[40] = (changed[40] + 7) % 512;
    try (DecoderModel model = open(name)) {
      HiddenStates batch = model.forward(new int[][] {tokens, changed});
      float[] a = model.logits(batch, 0);
      float[] b = model.logits(batch, 1);
      // The same shapes in the same order: earlier positions are computed identically.
      for (int i = 0; i < 40 * 512; i++) {
        assertThat(b[i]).as("%s logit %d before the change", name, i).isCloseTo(a[i], Offset.offset(1e-5f));
      }
      float difference = 0;
      for (int i = 40 * 512; i < a.length; i++) {
        difference = Math.max(difference, Math.abs(a[i] - b[i]));
      }
      assertThat(difference).as("%s: a changed token must change later logits", name).isGreaterThan(1e-3f);
      float[] alone = model.logits(model.forward(new int[][] {changed}), 0);
      for (int i = 0; i < alone.length; i++) {
        assertThat(alone[i]).as("%s alone vs batched %d", name, i).isCloseTo(b[i], Offset.offset(1e-5f));
      }
      float[] prefix = model.logits(model.forward(new int[][] {Arrays.copyOf(tokens, 20)}), 0);
      for (int i = 0; i < prefix.length; i++) {
        assertThat(prefix[i]).as("%s 20-token prefix %d", name, i).isCloseTo(a[i], Offset.offset(1e-4f));
      }
    }
  }
}
