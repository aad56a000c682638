package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.TensorRole;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
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

  @TempDir Path dir;

  static Path fixture(String name) {
    return ModelFixtures.path(name);
  }

  static DecoderModel open(String name) throws IOException {
    return Models.open(ModelArchive.open(IO, fixture(name).toString()), NetlibLinearAlgebra.defaultInstance());
  }

  static int[] goldenTokens(String name) throws IOException {
    return ModelFixtures.goldenTokens(name);
  }

  static float[] goldenLogits(String name) throws IOException {
    return ModelFixtures.goldenLogits(name);
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

  /**
   * The gemma3 fixture rewritten as a multimodal checkpoint: settings under text_config, the
   * decoder under language_model.model., plus a vision tensor. Same golden logits.
   */
  @Test
  void aMultimodalGemma3CheckpointRunsItsTextDecoder() throws IOException {
    Path source = fixture("gemma3");
    Path archive = Files.createDirectories(dir.resolve("gemma3-multimodal"));
    String text = Files.readString(source.resolve("config.json"));
    Files.writeString(archive.resolve("config.json"), "{\"model_type\": \"gemma3\", \"architectures\": [\"Gemma3ForConditionalGeneration\"], \"text_config\": " + text + "}");
    for (String file : new String[] {"tokenizer.json", "tokenizer_config.json"}) {
      Files.copy(source.resolve(file), archive.resolve(file));
    }
    try (SafetensorsReader reader = SafetensorsReader.open(IO.newInputFile(source.resolve("model.safetensors").toString()));
        var out = Files.newOutputStream(archive.resolve("model.safetensors"))) {
      List<TensorSpec> specs = new ArrayList<>();
      specs.add(new TensorSpec("vision_tower.patch_embedding.weight", DType.F32, 4));
      for (TensorInfo tensor : reader.tensors()) {
        specs.add(new TensorSpec("language_model." + tensor.name(), tensor.dtype(), tensor.shape()));
      }
      try (SafetensorsWriter writer = SafetensorsWriter.create(out, specs, Map.of())) {
        writer.writeFloats(new float[] {1, 2, 3, 4}, 0, 4);
        for (TensorInfo tensor : reader.tensors()) {
          float[] values = reader.readFloats(tensor.name());
          writer.writeFloats(values, 0, values.length);
        }
      }
    }
    ModelArchive opened = ModelArchive.open(IO, archive.toString());
    assertThat(Architectures.layout(opened).roles()).containsEntry("vision_tower.patch_embedding.weight", TensorRole.OTHER)
        .containsEntry("language_model.model.layers.0.self_attn.q_norm.weight", TensorRole.NORM);
    int[] tokens = goldenTokens("gemma3");
    float[] expected = goldenLogits("gemma3");
    try (DecoderModel model = Models.open(opened, NetlibLinearAlgebra.defaultInstance())) {
      assertThat(model.layout().modelType()).isEqualTo("gemma3");
      float[] logits = model.logits(model.forward(new int[][] {tokens}), 0);
      for (int i = 0; i < logits.length; i++) {
        assertThat(logits[i]).as("logit %d", i).isCloseTo(expected[i], Offset.offset(1e-4f));
      }
    }
  }

  /** Hugging Face multiplies by torch.tensor(sqrt(hidden), dtype=embedding dtype): 55.4256... for hidden 3072. */
  @Test
  void theEmbeddingScaleIsRoundedToTheEmbeddingsDtype() {
    assertThat(GemmaModel.roundTo(DType.BF16, Math.sqrt(3072))).isEqualTo(55.5f);
    assertThat(GemmaModel.roundTo(DType.F16, Math.sqrt(3072))).isEqualTo(55.4375f);
    assertThat(GemmaModel.roundTo(DType.F32, Math.sqrt(3072))).isEqualTo((float) Math.sqrt(3072));
    assertThat(GemmaModel.roundTo(DType.BF16, Math.sqrt(2304))).isEqualTo(48f);
  }
}
