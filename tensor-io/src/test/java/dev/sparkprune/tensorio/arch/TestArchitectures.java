package dev.sparkprune.tensorio.arch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.ArchiveFiles;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each architecture against the tensor names and shapes Hugging Face checkpoints use. */
class TestArchitectures {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final LocalFileIO IO = new LocalFileIO();

  @TempDir Path dir;

  private ModelLayout write(String name, ObjectNode config) throws IOException {
    Path archive = dir.resolve(name);
    SyntheticArchive.builder(config).dtype(DType.BF16).seed(1).build().write(IO, archive.toString());
    return Architectures.layout(ModelArchive.open(IO, archive.toString()));
  }

  private static long[] shapeOf(ModelArchive archive, String tensor) {
    return archive.tensor(tensor).shape();
  }

  @Test
  void llamaWithGroupedQueryAttention() throws IOException {
    ModelLayout layout = write("llama", SyntheticArchive.llamaConfig(32, 2, 4, 2, 48, 64));
    assertThat(layout.blocks()).hasSize(2);
    assertThat(layout.blocks().get(1).linears())
        .extracting(Linear::tensorName)
        .containsExactly(
            "model.layers.1.self_attn.q_proj.weight",
            "model.layers.1.self_attn.k_proj.weight",
            "model.layers.1.self_attn.v_proj.weight",
            "model.layers.1.self_attn.o_proj.weight",
            "model.layers.1.mlp.gate_proj.weight",
            "model.layers.1.mlp.up_proj.weight",
            "model.layers.1.mlp.down_proj.weight");
    assertThat(layout.linears()).extracting(Linear::outFeatures).startsWith(32L, 16L, 16L, 32L, 48L, 48L, 32L);
    assertThat(layout.linears()).extracting(Linear::inputGroup)
        .startsWith("attention_input", "attention_input", "attention_input", "attention_output", "mlp_input", "mlp_input", "mlp_hidden");
    assertThat(layout.roles()).containsEntry("lm_head.weight", TensorRole.LM_HEAD);
    assertThat(layout.linears()).allSatisfy(linear -> assertThat(linear.biasName()).isEmpty());
  }

  @Test
  void qwen2HasQkvBiasesAndMistralIsLlamaShaped() throws IOException {
    ObjectNode qwen = SyntheticArchive.llamaConfig(32, 1, 4, 4, 48, 64).put("model_type", "qwen2");
    ModelLayout layout = write("qwen2", qwen);
    assertThat(layout.linears())
        .extracting(linear -> linear.biasName().orElse("-"))
        .containsExactly(
            "model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.k_proj.bias", "model.layers.0.self_attn.v_proj.bias",
            "-", "-", "-", "-");
    assertThat(layout.roles()).containsEntry("model.layers.0.self_attn.q_proj.bias", TensorRole.BIAS);

    ModelLayout mistral = write("mistral", SyntheticArchive.llamaConfig(32, 1, 4, 1, 48, 64).put("model_type", "mistral"));
    assertThat(mistral.linears().get(1).outFeatures()).isEqualTo(8);
  }

  private static ObjectNode gpt2Config() {
    return JSON.createObjectNode()
        .put("model_type", "gpt2")
        .put("n_embd", 32)
        .put("n_layer", 2)
        .put("n_head", 4)
        .put("vocab_size", 64)
        .put("n_positions", 16);
  }

  @Test
  void gpt2Conv1DWeightsAreStoredInByOut() throws IOException {
    ModelLayout layout = write("gpt2", gpt2Config());
    ModelArchive archive = ModelArchive.open(IO, dir.resolve("gpt2").toString());
    assertThat(layout.blocks().get(0).linears())
        .extracting(Linear::tensorName)
        .containsExactly(
            "transformer.h.0.attn.c_attn.weight",
            "transformer.h.0.attn.c_proj.weight",
            "transformer.h.0.mlp.c_fc.weight",
            "transformer.h.0.mlp.c_proj.weight");
    Linear cAttn = layout.linears().get(0);
    assertThat(cAttn.storedTransposed()).isTrue();
    assertThat(cAttn.outFeatures()).isEqualTo(96);
    assertThat(cAttn.inFeatures()).isEqualTo(32);
    assertThat(shapeOf(archive, "transformer.h.0.attn.c_attn.weight")).containsExactly(32, 96);
    assertThat(shapeOf(archive, "transformer.h.0.mlp.c_fc.weight")).containsExactly(32, 128);
    assertThat(layout.linears().get(3).outFeatures()).isEqualTo(32);
    assertThat(layout.linears().get(3).inFeatures()).isEqualTo(128);
    assertThat(layout.roles()).containsEntry("transformer.wpe.weight", TensorRole.POSITION_EMBEDDING);
  }

  @Test
  void gpt2CheckpointWithoutTheTransformerPrefix() throws IOException {
    write("gpt2", gpt2Config());
    Path shard = dir.resolve("gpt2").resolve("model.safetensors");
    // The hub's gpt2 checkpoint names tensors without "transformer." and keeps attn.bias buffers.
    ArchiveFiles.rewrite(shard, shard, name -> name.startsWith("transformer.") ? name.substring("transformer.".length()) : name);
    ModelLayout layout = Architectures.layout(ModelArchive.open(IO, dir.resolve("gpt2").toString()));
    assertThat(layout.linears().get(0).tensorName()).isEqualTo("h.0.attn.c_attn.weight");
    assertThat(layout.linears().get(0).biasName()).contains("h.0.attn.c_attn.bias");
  }

  @Test
  void optWithProjectedEmbeddingsAndPositionOffset() throws IOException {
    ObjectNode config =
        JSON.createObjectNode()
            .put("model_type", "opt")
            .put("hidden_size", 32)
            .put("num_hidden_layers", 2)
            .put("num_attention_heads", 4)
            .put("ffn_dim", 64)
            .put("vocab_size", 50)
            .put("max_position_embeddings", 16)
            .put("word_embed_proj_dim", 24)
            .put("do_layer_norm_before", false);
    ModelLayout layout = write("opt", config);
    ModelArchive archive = ModelArchive.open(IO, dir.resolve("opt").toString());
    assertThat(layout.blocks().get(1).linears())
        .extracting(Linear::name)
        .containsExactly("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "fc1", "fc2");
    assertThat(layout.linears().get(0).tensorName()).isEqualTo("model.decoder.layers.0.self_attn.q_proj.weight");
    assertThat(shapeOf(archive, "model.decoder.embed_positions.weight")).containsExactly(18, 32);
    assertThat(shapeOf(archive, "model.decoder.embed_tokens.weight")).containsExactly(50, 24);
    assertThat(shapeOf(archive, "model.decoder.project_in.weight")).containsExactly(32, 24);
    assertThat(layout.roles()).doesNotContainKey("model.decoder.final_layer_norm.weight");
    assertThat(layout.linears().get(4).biasName()).contains("model.decoder.layers.0.fc1.bias");
  }

  @Test
  void gptNeoxFusedQueryKeyValue() throws IOException {
    ObjectNode config =
        JSON.createObjectNode()
            .put("model_type", "gpt_neox")
            .put("hidden_size", 32)
            .put("num_hidden_layers", 2)
            .put("num_attention_heads", 4)
            .put("intermediate_size", 128)
            .put("vocab_size", 64)
            .put("rotary_pct", 0.25);
    ModelLayout layout = write("neox", config);
    assertThat(layout.blocks().get(0).linears())
        .extracting(Linear::tensorName)
        .containsExactly(
            "gpt_neox.layers.0.attention.query_key_value.weight",
            "gpt_neox.layers.0.attention.dense.weight",
            "gpt_neox.layers.0.mlp.dense_h_to_4h.weight",
            "gpt_neox.layers.0.mlp.dense_4h_to_h.weight");
    assertThat(layout.linears().get(0).outFeatures()).isEqualTo(96);
    assertThat(layout.roles()).containsEntry("embed_out.weight", TensorRole.LM_HEAD);
  }

  @Test
  void shapeThatDoesNotMatchTheConfigNamesTheTensor() throws IOException {
    write("llama", SyntheticArchive.llamaConfig(32, 2, 4, 2, 48, 64));
    Path config = dir.resolve("llama").resolve("config.json");
    Files.writeString(config, Files.readString(config).replace("\"intermediate_size\" : 48", "\"intermediate_size\" : 40"));
    assertThatThrownBy(() -> Architectures.layout(ModelArchive.open(IO, dir.resolve("llama").toString())))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("tensor 'model.layers.0.mlp.gate_proj.weight' has shape [48, 32] but config.json implies [40, 32]");
  }

  @Test
  void missingTensorNamesTheTensorAndArchitecture() throws IOException {
    write("llama", SyntheticArchive.llamaConfig(32, 2, 4, 2, 48, 64));
    Path shard = dir.resolve("llama").resolve("model.safetensors");
    ArchiveFiles.rewrite(shard, shard, name -> name.equals("model.layers.1.mlp.up_proj.weight") ? null : name);
    assertThatThrownBy(() -> Architectures.layout(ModelArchive.open(IO, dir.resolve("llama").toString())))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("tensor 'model.layers.1.mlp.up_proj.weight' that llama needs is missing");
  }

  @Test
  void syntheticArchivesAreTheSameWhateverTheSharding() throws IOException {
    ObjectNode config = SyntheticArchive.llamaConfig(32, 3, 4, 2, 48, 64);
    SyntheticArchive.builder(config).seed(5).build().write(IO, dir.resolve("one").toString());
    SyntheticArchive.builder(config).seed(5).shards(3).build().write(IO, dir.resolve("three").toString());
    ModelArchive one = ModelArchive.open(IO, dir.resolve("one").toString());
    ModelArchive three = ModelArchive.open(IO, dir.resolve("three").toString());
    assertThat(three.shards()).hasSize(3);
    for (String name : List.of("model.embed_tokens.weight", "model.layers.2.mlp.down_proj.weight", "lm_head.weight")) {
      ArchiveTensor a = one.tensor(name);
      ArchiveTensor b = three.tensor(name);
      try (var readerA = one.openShard(a.shard());
          var readerB = three.openShard(b.shard())) {
        assertThat(readerB.readFloats(name)).isEqualTo(readerA.readFloats(name));
      }
    }
  }
}
