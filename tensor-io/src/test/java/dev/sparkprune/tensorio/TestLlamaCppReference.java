package dev.sparkprune.tensorio;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The llama.cpp harness itself against golden values computed without llama.cpp or sparkprune:
 * stories260K's reference_eval.json and the llama fixture's float64 logits. Measured agreement is
 * ~3e-6; 1e-4 leaves room for other CPUs' kernels.
 */
class TestLlamaCppReference {
  private static final double TOLERANCE = 1e-4;

  @Test
  void stories260KLogitsEqualTheReferenceEvaluation() throws IOException {
    JsonNode reference = new ObjectMapper().readTree(SharedData.path("data/stories260K/reference_eval.json").toFile());
    JsonNode ids = reference.get("token_ids_first_32");
    int[] tokens = new int[ids.size()];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = ids.get(i).asInt();
    }
    float[][] logits = LlamaCppReference.logits(SharedData.stories260K(), tokens);
    assertThat(logits).hasNumberOfRows(32);
    assertThat(logits[0]).hasSize(512);
    for (int i = 0; i < 8; i++) {
      assertThat((double) logits[0][i]).as("logit[0][%d]", i).isCloseTo(reference.get("logits_pos0_first8").get(i).asDouble(), Offset.offset(TOLERANCE));
      assertThat((double) logits[10][i]).as("logit[10][%d]", i).isCloseTo(reference.get("logits_pos10_first8").get(i).asDouble(), Offset.offset(TOLERANCE));
    }
    int argmax = 0;
    for (int i = 1; i < 512; i++) {
      argmax = logits[0][i] > logits[0][argmax] ? i : argmax;
    }
    assertThat(argmax).isEqualTo(reference.get("argmax_pos0").asInt());
  }

  @Test
  void llamaFixtureLogitsEqualTheFloat64GoldenAndABadTokenFailsInTheDriver(@TempDir Path dir) throws IOException {
    int[] tokens = ModelFixtures.goldenTokens("llama");
    float[] golden = ModelFixtures.goldenLogits("llama");
    Path gguf = LlamaCppReference.convert(ModelFixtures.path("llama"), dir.resolve("llama.gguf"));
    float[][] logits = LlamaCppReference.evaluate(gguf, tokens);
    assertThat(logits).hasNumberOfRows(tokens.length);
    for (int t = 0; t < tokens.length; t++) {
      assertThat(logits[t]).hasSize(512);
      for (int v = 0; v < 512; v++) {
        assertThat((double) logits[t][v]).as("logit[%d][%d]", t, v).isCloseTo(golden[t * 512 + v], Offset.offset(TOLERANCE));
      }
    }
    assertThatThrownBy(() -> LlamaCppReference.evaluate(gguf, new int[] {1, 512}))
        .isInstanceOf(IOException.class)
        .hasMessageStartingWith("Cannot evaluate with llama.cpp")
        .hasMessageContaining("token id outside the vocabulary");
  }

  @Test
  void anArchiveLlamaCppCannotConvertFailsWithTheConvertersReason(@TempDir Path dir) throws IOException {
    LlamaCppReference.require();
    ArchiveFiles.copyNonWeightFiles(ModelFixtures.path("llama"), dir);
    Files.writeString(dir.resolve("config.json"), "{\"architectures\": [\"NoSuchModelForCausalLM\"], \"model_type\": \"nosuch\"}");
    assertThatThrownBy(() -> LlamaCppReference.logits(dir, new int[] {1, 2}))
        .isInstanceOf(IOException.class)
        .hasMessageStartingWith("Cannot convert with llama.cpp")
        .hasMessageContaining("NoSuchModelForCausalLM");
  }
}
