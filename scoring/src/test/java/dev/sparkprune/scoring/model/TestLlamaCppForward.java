package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.LlamaCppReference;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * sparkprune's forward pass against llama.cpp (an independent implementation) on the GGUF that
 * llama.cpp's own converter writes from the same archive: the check that any archive sparkprune
 * reads or writes means the same model to llama.cpp. Skips where bin/setup-llamacpp-reference
 * has not run.
 */
class TestLlamaCppForward {
  /** Measured differences are ≤ 1e-5 on every architecture without GELU. */
  private static final double TOLERANCE = 1e-3;
  /**
   * llama.cpp's CPU backend evaluates GELU through an fp16 table (input and output rounded to
   * half precision, ~5e-4 relative), which moves Gemma's logits by 1.5e-3 (gemma2) and 2.6e-3
   * (gemma3) from the float64 golden; sparkprune is within 1e-4 of that golden.
   */
  private static final double GELU_TOLERANCE = 4e-3;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"llama", "qwen3", "gemma2", "gemma3", "phi3", "mixtral", "qwen2_moe", "qwen3_moe"})
  void fixtureLogitsEqualLlamaCpp(String arch) throws IOException {
    double tolerance = arch.startsWith("gemma") ? GELU_TOLERANCE : TOLERANCE;
    assertLogitsEqualLlamaCpp(arch, ModelFixtures.path(arch), ModelFixtures.goldenTokens(arch), tolerance);
  }

  /** The real model on 256 tokens of in-domain text. */
  @Test
  void stories260KLogitsEqualLlamaCpp() throws IOException {
    Path archive = SharedData.stories260K();
    String text = Files.readString(SharedData.path("data/tinystories/tinystories_val_sample.txt")).substring(0, 4000);
    int[] tokens = TokenizerLoader.load(open(archive)).encode(text, true);
    assertThat(tokens.length).isGreaterThan(256);
    assertLogitsEqualLlamaCpp("stories260K", archive, Arrays.copyOf(tokens, 256), TOLERANCE);
  }

  private static ModelArchive open(Path archive) throws IOException {
    return ModelArchive.open(new LocalFileIO(), archive.toString());
  }

  /** As below, named by the archive's folder name. */
  static void assertLogitsEqualLlamaCpp(Path archive, int[] tokens, double tolerance) throws IOException {
    assertLogitsEqualLlamaCpp(archive.getFileName().toString(), archive, tokens, tolerance);
  }

  /**
   * Asserts the largest |sparkprune - llama.cpp| over every position and vocabulary entry of one
   * sequence is within {@code tolerance} (any archive sparkprune reads or writes; {@code label}
   * names it in messages).
   */
  static void assertLogitsEqualLlamaCpp(String label, Path archive, int[] tokens, double tolerance) throws IOException {
    float[][] reference = LlamaCppReference.logits(archive, tokens);
    try (DecoderModel model = Models.open(open(archive), NetlibLinearAlgebra.defaultInstance())) {
      float[] logits = model.logits(model.forward(new int[][] {tokens}), 0);
      int vocab = reference[0].length;
      assertThat(logits).hasSize(tokens.length * vocab);
      double worst = 0;
      int at = 0;
      for (int i = 0; i < logits.length; i++) {
        double error = Math.abs(logits[i] - (double) reference[i / vocab][i % vocab]);
        // Written so that a NaN on either side becomes the worst error and fails the test.
        if (!(error <= worst)) {
          worst = error;
          at = i;
        }
      }
      System.out.printf("%s: largest |sparkprune - llama.cpp| = %.3g over %d tokens%n", label, worst, tokens.length);
      assertThat(worst).as("%s: largest |sparkprune - llama.cpp| at position %d, vocab %d", label, at / vocab, at % vocab)
          .isLessThanOrEqualTo(tolerance);
    }
  }
}
