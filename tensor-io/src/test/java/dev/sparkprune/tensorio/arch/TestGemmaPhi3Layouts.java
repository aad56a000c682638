package dev.sparkprune.tensorio.arch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.ModelConfig;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/** The Gemma and Phi-3 fixtures of ../shared against Hugging Face's tensor names and shapes. */
class TestGemmaPhi3Layouts {
  private static final LocalFileIO IO = new LocalFileIO();
  private static final ObjectMapper JSON = new ObjectMapper();

  private static ModelArchive fixture(String name) throws IOException {
    return ModelArchive.open(IO, SharedData.path("fixtures/models/" + name).toString());
  }

  @Test
  void phi3FusedLinearsAreOnePrunableMatrixEach() throws IOException {
    ModelLayout layout = Architectures.layout(fixture("phi3"));
    assertThat(layout.modelType()).isEqualTo("phi3");
    assertThat(layout.blocks()).hasSize(3);
    // hidden 64, 4 heads of 16, 2 kv heads: q 64 + k 32 + v 32 rows; intermediate 128: gate 128 + up 128 rows.
    assertThat(layout.blocks().get(2).linears())
        .extracting(Linear::name, Linear::outFeatures, Linear::inFeatures, Linear::inputGroup)
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple("self_attn.qkv_proj", 128L, 64L, "attention_input"),
            org.assertj.core.groups.Tuple.tuple("self_attn.o_proj", 64L, 64L, "attention_output"),
            org.assertj.core.groups.Tuple.tuple("mlp.gate_up_proj", 256L, 64L, "mlp_input"),
            org.assertj.core.groups.Tuple.tuple("mlp.down_proj", 64L, 128L, "mlp_hidden"));
    assertThat(layout.roles()).containsEntry("lm_head.weight", TensorRole.LM_HEAD).containsEntry("model.norm.weight", TensorRole.NORM);
    assertThat(layout.roles()).doesNotContainValue(TensorRole.OTHER);
  }

  @Test
  void gemma2HasFourNormsPerBlockAndATiedHead() throws IOException {
    ModelLayout layout = Architectures.layout(fixture("gemma2"));
    assertThat(layout.blocks()).hasSize(4);
    assertThat(layout.blocks().get(0).linears())
        .extracting(Linear::name, Linear::outFeatures, Linear::inFeatures)
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple("self_attn.q_proj", 128L, 64L),
            org.assertj.core.groups.Tuple.tuple("self_attn.k_proj", 64L, 64L),
            org.assertj.core.groups.Tuple.tuple("self_attn.v_proj", 64L, 64L),
            org.assertj.core.groups.Tuple.tuple("self_attn.o_proj", 64L, 128L),
            org.assertj.core.groups.Tuple.tuple("mlp.gate_proj", 128L, 64L),
            org.assertj.core.groups.Tuple.tuple("mlp.up_proj", 128L, 64L),
            org.assertj.core.groups.Tuple.tuple("mlp.down_proj", 64L, 128L));
    for (String norm : new String[] {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"}) {
      assertThat(layout.roles()).containsEntry("model.layers.3." + norm + ".weight", TensorRole.NORM);
    }
    assertThat(layout.roles()).doesNotContainKey("lm_head.weight").doesNotContainValue(TensorRole.OTHER);
  }

  @Test
  void gemma3HasPerHeadQueryAndKeyNorms() throws IOException {
    ModelLayout layout = Architectures.layout(fixture("gemma3"));
    assertThat(layout.modelType()).isEqualTo("gemma3_text");
    assertThat(layout.blocks()).hasSize(6);
    assertThat(layout.roles()).containsEntry("model.layers.5.self_attn.q_norm.weight", TensorRole.NORM)
        .containsEntry("model.layers.5.self_attn.k_norm.weight", TensorRole.NORM)
        .doesNotContainValue(TensorRole.OTHER);
  }

  @Test
  void aMultimodalGemma3ConfigIsReadFromItsTextConfig() throws IOException {
    ObjectNode text = (ObjectNode) JSON.readTree(Files.readString(SharedData.path("fixtures/models/gemma3/config.json")));
    ObjectNode root = JSON.createObjectNode().put("model_type", "gemma3");
    root.set("text_config", text);
    GemmaConfig gemma = GemmaConfig.resolve(ModelConfig.parse("config.json", root.toString()));
    assertThat(gemma.gemma3()).isTrue();
    assertThat(gemma.layers()).isEqualTo(6);
    assertThat(gemma.localRopeTheta()).isEqualTo(10_000.0);
    assertThat(gemma.ropeTheta()).isEqualTo(1_000_000.0);
    assertThat(gemma.attentionSoftcap()).isZero();
    assertThat(new boolean[] {gemma.sliding(0), gemma.sliding(4), gemma.sliding(5)}).containsExactly(true, true, false);

    text.remove("layer_types");
    text.put("sliding_window_pattern", 3);
    gemma = GemmaConfig.resolve(ModelConfig.parse("config.json", root.toString()));
    assertThat(new boolean[] {gemma.sliding(0), gemma.sliding(1), gemma.sliding(2), gemma.sliding(5)}).containsExactly(true, true, false, false);

    assertThatThrownBy(() -> GemmaConfig.resolve(ModelConfig.parse("config.json", "{\"model_type\":\"gemma3\"}")))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid model config config.json: model_type gemma3 needs a text_config object");
  }

  @Test
  void gemma2DefaultsFollowHuggingFace() {
    ModelConfig config = ModelConfig.parse("config.json", "{\"model_type\":\"gemma2\",\"num_hidden_layers\":4,\"final_logit_softcapping\":null}");
    GemmaConfig gemma = GemmaConfig.resolve(config);
    // Gemma2Config: attention soft-cap 50, an explicit null final soft-cap means none; layers alternate sliding, full.
    assertThat(gemma.attentionSoftcap()).isEqualTo(50.0);
    assertThat(gemma.finalSoftcap()).isZero();
    assertThat(gemma.queryPreAttnScalar()).isEqualTo(256.0);
    assertThat(gemma.slidingWindow()).isEqualTo(4096);
    assertThat(new boolean[] {gemma.sliding(0), gemma.sliding(1), gemma.sliding(2), gemma.sliding(3)}).containsExactly(true, false, true, false);
    assertThatThrownBy(() -> GemmaConfig.resolve(ModelConfig.parse("config.json", "{\"model_type\":\"gemma2\",\"num_hidden_layers\":2,\"layer_types\":[\"full_attention\",\"chunked_attention\"]}")))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid model config config.json: layer_types[1] is \"chunked_attention\"; expected sliding_attention or full_attention");
  }

  @Test
  void gemmaAcceptsOnlyTheTanhGelu() throws IOException {
    ModelArchive archive = fixture("gemma2");
    ObjectNode config = (ObjectNode) archive.config().json().deepCopy();
    config.put("hidden_activation", "gelu");
    assertThatThrownBy(() -> Architectures.layout(ModelConfig.parse("config.json", config.toString()), archive.tensorInfos(), "gemma2"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot run model_type gemma2: hidden_activation \"gelu\" in config.json is not implemented; its forward pass computes [gelu_new, gelu_pytorch_tanh]");
  }

  @Test
  void phi3LongropeIsCheckedOnTheDriver() throws IOException {
    ModelArchive archive = fixture("phi3");
    ObjectNode config = (ObjectNode) archive.config().json().deepCopy();
    ObjectNode scaling = config.putObject("rope_scaling").put("type", "longrope");
    // head_dim 16, all of it rotated: 8 factors each.
    scaling.putArray("short_factor").add(1.0).add(1.0).add(1.0).add(1.0).add(1.0).add(1.0).add(1.0).add(1.0);
    scaling.putArray("long_factor").add(2.0).add(2.0).add(2.0);
    assertThatThrownBy(() -> Architectures.layout(ModelConfig.parse("config.json", config.toString()), archive.tensorInfos(), "phi3"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid model config config.json: rope_scaling.long_factor must be a list of 8 numbers (rotary dimensions / 2), found [2.0,2.0,2.0]");
    scaling.putArray("long_factor").add(2.0).add(2.0).add(2.0).add(2.0).add(2.0).add(2.0).add(2.0).add(2.0);
    assertThat(Architectures.layout(ModelConfig.parse("config.json", config.toString()), archive.tensorInfos(), "phi3").blocks()).hasSize(3);
    config.remove("original_max_position_embeddings");
    assertThatThrownBy(() -> Architectures.layout(ModelConfig.parse("config.json", config.toString()), archive.tensorInfos(), "phi3"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot run model_type phi3: longrope rope_scaling in config.json needs original_max_position_embeddings; add the pretrained context length");
  }
}
