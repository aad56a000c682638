package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.ArchiveFiles;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
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
import org.junit.jupiter.api.io.TempDir;
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
  @ValueSource(strings = {"llama", "qwen3", "gemma2", "gemma3", "phi3", "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "glm4_moe"})
  void fixtureLogitsEqualLlamaCpp(String arch) throws IOException {
    double tolerance = arch.startsWith("gemma") ? GELU_TOLERANCE : TOLERANCE;
    assertLogitsEqualLlamaCpp(arch, ModelFixtures.path(arch), ModelFixtures.goldenTokens(arch), tolerance);
  }

  /**
   * gpt-oss where llama.cpp computes what transformers does. ggml rounds yarn's correction range
   * to whole dimensions (floor, ceil), which transformers does only with rope_scaling.truncate
   * true; the fixture's truncate false moves llama.cpp's logits 5e-2 from the golden (and from
   * sparkprune, which is within 2e-5 of it). With truncate true both round: the same archive
   * otherwise, every other part of gpt-oss (sinks, sliding layers, biases, router, clamped
   * SwiGLU of the fused experts) compared.
   */
  @Test
  void gptOssLogitsEqualLlamaCppWithTheYarnRampRounded(@TempDir Path temp) throws IOException {
    Path source = ModelFixtures.path("gpt_oss");
    Path archive = temp.resolve("gpt_oss_truncate");
    ArchiveFiles.copyNonWeightFiles(source, archive);
    Files.copy(source.resolve("model.safetensors"), archive.resolve("model.safetensors"));
    ObjectNode config = (ObjectNode) new ObjectMapper().readTree(archive.resolve("config.json").toFile());
    ((ObjectNode) config.get("rope_scaling")).put("truncate", true);
    Files.writeString(archive.resolve("config.json"), config.toString());
    assertLogitsEqualLlamaCpp("gpt_oss (truncate: true)", archive, ModelFixtures.goldenTokens("gpt_oss"), TOLERANCE);
  }

  /**
   * DeepSeek-V3's other attention layout (Moonlight, V2-Lite): queries from one q_proj (no
   * q_lora_rank), here with default rope, one expert group and no MTP layer, on small generated
   * weights. 26 blocks: llama.cpp takes a deepseek2 GGUF for this layout only at 26 or 27
   * blocks (its V2-Lite test, hparams.n_layer in src/models/deepseek2.cpp).
   */
  @Test
  void deepseekWithoutQueryLoraEqualsLlamaCpp(@TempDir Path temp) throws IOException {
    Path source = ModelFixtures.path("deepseek_v3");
    ObjectNode config = (ObjectNode) new ObjectMapper().readTree(source.resolve("config.json").toFile());
    config.putNull("q_lora_rank").putNull("rope_scaling").put("num_nextn_predict_layers", 0).put("num_hidden_layers", 26)
        .put("hidden_size", 64).put("num_attention_heads", 2).put("num_key_value_heads", 2).put("kv_lora_rank", 32)
        .put("qk_nope_head_dim", 16).put("qk_rope_head_dim", 8).put("v_head_dim", 16).put("intermediate_size", 96)
        .put("moe_intermediate_size", 16).put("n_routed_experts", 4).put("num_experts_per_tok", 2).put("n_shared_experts", 1)
        .put("n_group", 1).put("topk_group", 1);
    Path archive = temp.resolve("moonlight_shaped");
    SyntheticArchive.builder(config).dtype(DType.F32).seed(5).initStd(0.08f).build().write(new LocalFileIO(), archive.toString());
    for (String file : new String[] {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
      Files.copy(source.resolve(file), archive.resolve(file));
    }
    assertLogitsEqualLlamaCpp("deepseek_v3 without q_lora_rank", archive, ModelFixtures.goldenTokens("deepseek_v3"), TOLERANCE);
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
      double largest = 0;
      int at = 0;
      for (int i = 0; i < logits.length; i++) {
        largest = Math.max(largest, Math.abs(logits[i]));
        double error = Math.abs(logits[i] - (double) reference[i / vocab][i % vocab]);
        // Written so that a NaN on either side becomes the worst error and fails the test.
        if (!(error <= worst)) {
          worst = error;
          at = i;
        }
      }
      System.out.printf("%s: largest |sparkprune - llama.cpp| = %.3g over %d tokens (logits reach %.3g)%n", label, worst, tokens.length, largest);
      assertThat(worst).as("%s: largest |sparkprune - llama.cpp| at position %d, vocab %d", label, at / vocab, at % vocab)
          .isLessThanOrEqualTo(tolerance);
    }
  }
}
