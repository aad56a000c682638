package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.util.Arrays;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/** The real pretrained model against the golden forward pass in reference_eval.json. */
class TestStories260K {
  /** Logits here reach |17|; float rounding differences between kernels stay near 1e-5 there. */
  private static final float LOGIT_TOLERANCE = 1e-4f;

  private static ModelArchive archive() throws IOException {
    return ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString());
  }

  private static int[] goldenTokens() throws IOException {
    String text = Files.readString(SharedData.path("data/tinystories/tinystories_val_sample.txt")).substring(0, 4000);
    Tokenizer tokenizer = TokenizerLoader.load(archive());
    int[] ids = tokenizer.encode(text, true);
    return Arrays.copyOf(ids, Math.min(512, ids.length));
  }

  @Test
  void meanNllAndLogitsMatchTheReference() throws IOException {
    JsonNode reference = new ObjectMapper().readTree(SharedData.path("data/stories260K/reference_eval.json").toFile());
    int[] tokens = goldenTokens();
    assertThat(tokens).hasSize(512);
    try (DecoderModel model = Models.open(archive(), NetlibLinearAlgebra.defaultInstance())) {
      HiddenStates hidden = model.forward(new int[][] {tokens});
      double nll = model.meanNll(hidden, new int[][] {tokens})[0];
      assertThat(nll).isCloseTo(reference.get("mean_nll").asDouble(), Offset.offset(1e-4));
      float[] logits = model.logits(hidden, 0);
      for (int i = 0; i < 8; i++) {
        assertThat((double) logits[i]).as("logit[0][%d]", i).isCloseTo(reference.get("logits_pos0_first8").get(i).asDouble(), Offset.offset(1e-4));
        assertThat((double) logits[10 * 512 + i]).as("logit[10][%d]", i)
            .isCloseTo(reference.get("logits_pos10_first8").get(i).asDouble(), Offset.offset(1e-4));
      }
      int argmax = 0;
      for (int i = 1; i < 512; i++) {
        argmax = logits[i] > logits[argmax] ? i : argmax;
      }
      assertThat(argmax).isEqualTo(reference.get("argmax_pos0").asInt());
    }
  }

  /**
   * Causality and batching. Rows of one batch sit at different offsets of the same GEMMs and a
   * lone sequence is a smaller GEMM: OpenBLAS may pick other kernels (another summation order)
   * for them on another CPU, so equal here means equal within float rounding, not bit for bit.
   */
  @Test
  void aLaterTokenNeverChangesEarlierLogitsAndBatchingChangesNothing() throws IOException {
    int[] tokens = Arrays.copyOf(goldenTokens(), 64);
    int[] changed = tokens.clone();
    changed[40] = (changed[40] + 7) % 512;
    try (DecoderModel model = Models.open(archive(), NetlibLinearAlgebra.defaultInstance())) {
      HiddenStates batch = model.forward(new int[][] {tokens, changed});
      float[] a = model.logits(batch, 0);
      float[] b = model.logits(batch, 1);
      int before = 40 * 512;
      assertThat(maxAbsDifference(a, b, 0, before)).as("logits before the changed token").isLessThanOrEqualTo(LOGIT_TOLERANCE);
      assertThat(maxAbsDifference(a, b, before, before + 512)).as("logits at the changed token").isGreaterThan(100 * LOGIT_TOLERANCE);
      float[] alone = model.logits(model.forward(new int[][] {changed}), 0);
      assertThat(alone).hasSameSizeAs(b);
      assertThat(maxAbsDifference(alone, b, 0, b.length)).as("one sequence alone vs in a batch of two").isLessThanOrEqualTo(LOGIT_TOLERANCE);
    }
  }

  private static float maxAbsDifference(float[] x, float[] y, int from, int to) {
    float worst = 0;
    for (int i = from; i < to; i++) {
      worst = Math.max(worst, Math.abs(x[i] - y[i]));
    }
    return worst;
  }

  @Test
  void badTokensAndLengthsNameThePosition() throws IOException {
    try (DecoderModel model = Models.open(archive(), NetlibLinearAlgebra.defaultInstance())) {
      assertThatThrownBy(() -> model.embed(new int[][] {{1, 2, 512}}))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Token id 512 at sequence 0 position 2 is outside the vocabulary of 512");
      assertThatThrownBy(() -> model.embed(new int[][] {new int[513]}))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Sequence length 513 exceeds max_position_embeddings 512 of the model");
    }
  }
}
