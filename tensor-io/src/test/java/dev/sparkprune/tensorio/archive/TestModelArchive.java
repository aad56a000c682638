package dev.sparkprune.tensorio.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.ArchiveFiles;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.arch.TensorRole;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestModelArchive {
  private static final FileIO IO = new HadoopFileIO(new Configuration());

  @TempDir Path dir;

  @Test
  void stories260KHasFiveBlocksOfSevenLinears() throws IOException {
    ModelArchive archive = ModelArchive.open(IO, SharedData.stories260K().toString());
    ModelLayout layout = Architectures.layout(archive);

    assertThat(archive.config().modelType()).isEqualTo("llama");
    assertThat(archive.isSharded()).isFalse();
    assertThat(archive.shards()).extracting(Shard::fileName).containsExactly("model.safetensors");
    assertThat(archive.shards().get(0).metadata()).containsEntry("format", "pt");
    assertThat(archive.tokenizerFiles()).contains("tokenizer.json", "tokenizer_config.json");
    assertThat(layout.blocks()).hasSize(5);
    assertThat(layout.linears()).hasSize(35);
    assertThat(layout.totalParameters()).isEqualTo(260_032);
    // 5 blocks x (q 64x64 + k,v 32x64 + o 64x64 + gate,up 172x64 + down 64x172).
    assertThat(layout.prunableParameters()).isEqualTo(5L * (4096 + 2048 + 2048 + 4096 + 3 * 11008));
    assertThat(layout.blocks().get(2).linears())
        .extracting(Linear::name)
        .containsExactly(
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");
    Linear k = layout.blocks().get(0).linears().get(1);
    assertThat(k.tensorName()).isEqualTo("model.layers.0.self_attn.k_proj.weight");
    assertThat(k.outFeatures()).isEqualTo(32);
    assertThat(k.inFeatures()).isEqualTo(64);
    assertThat(layout.roles()).containsEntry("model.embed_tokens.weight", TensorRole.EMBEDDING);
    assertThat(layout.roles()).containsEntry("model.norm.weight", TensorRole.NORM);
    ArchiveTensor embedding = archive.tensor("model.embed_tokens.weight");
    assertThat(embedding.dtype()).isEqualTo(DType.F32);
    assertThat(embedding.fileEnd() - embedding.fileBegin()).isEqualTo(512L * 64 * 4);
  }

  @Test
  void shardedCopyListsTheSameTensorsWithTheSameData() throws IOException {
    Path source = SharedData.stories260K();
    Path sharded = dir.resolve("sharded");
    ArchiveFiles.reshard(source, sharded, 3);

    ModelArchive single = ModelArchive.open(IO, source.toString());
    ModelArchive archive = ModelArchive.open(IO, sharded.toString());
    assertThat(archive.isSharded()).isTrue();
    assertThat(archive.shards()).hasSize(3);
    assertThat(archive.tensors()).extracting(ArchiveTensor::name).containsExactlyElementsOf(
        single.tensors().stream().map(ArchiveTensor::name).toList());
    assertThat(Architectures.layout(archive).totalParameters()).isEqualTo(260_032);
    ArchiveTensor down = archive.tensor("model.layers.4.mlp.down_proj.weight");
    assertThat(down.shard()).isEqualTo("model-00003-of-00003.safetensors");
    try (SafetensorsReader a = single.openShard("model.safetensors");
        SafetensorsReader b = archive.openShard(down.shard())) {
      assertThat(b.readFloats(down.name())).isEqualTo(a.readFloats(down.name()));
    }
  }

  @Test
  void missingShardNamedByTheIndex() throws IOException {
    Path sharded = dir.resolve("sharded");
    ArchiveFiles.reshard(SharedData.stories260K(), sharded, 2);
    Files.delete(sharded.resolve("model-00002-of-00002.safetensors"));
    assertThatThrownBy(() -> ModelArchive.open(IO, sharded.toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("shard 'model-00002-of-00002.safetensors' named by model.safetensors.index.json is missing");
  }

  @Test
  void indexThatMapsATensorToTheWrongShard() throws IOException {
    Path sharded = dir.resolve("sharded");
    ArchiveFiles.reshard(SharedData.stories260K(), sharded, 2);
    Path index = sharded.resolve("model.safetensors.index.json");
    Files.writeString(
        index,
        Files.readString(index)
            .replace("\"model.embed_tokens.weight\":\"model-00001-of-00002", "\"model.embed_tokens.weight\":\"model-00002-of-00002"));
    assertThatThrownBy(() -> ModelArchive.open(IO, sharded.toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("maps tensor 'model.embed_tokens.weight' to model-00002-of-00002.safetensors, which does not contain it");
  }

  @Test
  void indexThatEscapesTheArchiveDirectory() throws IOException {
    Path sharded = dir.resolve("sharded");
    ArchiveFiles.reshard(SharedData.stories260K(), sharded, 2);
    Path index = sharded.resolve("model.safetensors.index.json");
    Files.writeString(index, Files.readString(index).replaceFirst("\"model-00001-of-00002", "\"../model-00001-of-00002"));
    assertThatThrownBy(() -> ModelArchive.open(IO, sharded.toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("not a file name in the archive");
  }

  @Test
  void duplicateTensorAcrossShards() throws IOException {
    Path sharded = dir.resolve("sharded");
    ArchiveFiles.reshard(SharedData.stories260K(), sharded, 2);
    Path second = sharded.resolve("model-00002-of-00002.safetensors");
    // Rename one tensor of shard 2 to the first tensor of shard 1.
    String duplicated = "model.embed_tokens.weight";
    String[] first = {null};
    ArchiveFiles.rewrite(second, second, name -> {
      if (first[0] == null) {
        first[0] = name;
        return duplicated;
      }
      return name;
    });
    assertThatThrownBy(() -> ModelArchive.open(IO, sharded.toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("duplicate tensor 'model.embed_tokens.weight' in model-00001-of-00002.safetensors and model-00002-of-00002.safetensors");
  }

  @Test
  void pickleCheckpointsAreRefusedWithAConversionHint() throws IOException {
    Path pickled = dir.resolve("pickled");
    Files.createDirectories(pickled);
    Files.writeString(pickled.resolve("config.json"), "{\"model_type\":\"llama\"}");
    // A pickle's opcodes; it must never be opened, let alone unpickled.
    Files.write(pickled.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 0x02, 'c', 'o', 's', '\n'});
    assertThatThrownBy(() -> ModelArchive.open(IO, pickled.toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("pickle checkpoints [pytorch_model.bin]")
        .hasMessageContaining("can execute arbitrary code")
        .hasMessageContaining("safe_serialization=True");
    assertThatThrownBy(() -> ModelArchive.open(IO, pickled.resolve("model.pt").toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("pickle checkpoints [model.pt]");
  }

  @Test
  void missingConfigAndInvalidConfig() throws IOException {
    Path archive = dir.resolve("noconfig");
    Files.createDirectories(archive);
    Files.copy(SharedData.stories260K().resolve("model.safetensors"), archive.resolve("model.safetensors"));
    assertThatThrownBy(() -> ModelArchive.open(IO, archive.toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageEndingWith(": no config.json");
    Files.writeString(archive.resolve("config.json"), "{\"model_type\": llama}");
    assertThatThrownBy(() -> ModelArchive.open(IO, archive.toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Invalid model config")
        .hasMessageContaining("not valid JSON");
  }

  @Test
  void unsupportedModelType() throws IOException {
    Path archive = dir.resolve("bert");
    ArchiveFiles.copyNonWeightFiles(SharedData.stories260K(), archive);
    Files.copy(SharedData.stories260K().resolve("model.safetensors"), archive.resolve("model.safetensors"));
    Files.writeString(archive.resolve("config.json"), "{\"model_type\": \"bert\", \"hidden_size\": 64}");
    ModelArchive opened = ModelArchive.open(IO, archive.toString());
    assertThatThrownBy(() -> Architectures.layout(opened))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Unsupported model_type 'bert'")
        .hasMessageContaining(
            "sparkprune supports [llama, mistral, qwen2, qwen3, mixtral, qwen2_moe, qwen3_moe, glm4_moe, gpt2, opt, gpt_neox, gemma2, gemma3_text, gemma3, phi3,"
                + " deepseek_v3, kimi_k2, gpt_oss]");
  }

  @Test
  void missingDirectoryAndNoWeights() throws IOException {
    assertThatThrownBy(() -> ModelArchive.open(IO, dir.resolve("absent").toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageEndingWith(": directory not found");
    Path empty = dir.resolve("empty");
    Files.createDirectories(empty);
    Files.writeString(empty.resolve("config.json"), "{}");
    assertThatThrownBy(() -> ModelArchive.open(IO, empty.toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("no model.safetensors or model.safetensors.index.json (found [config.json])");
    assertThat(List.of(ModelArchive.isPickle("pytorch_model-00001-of-00002.bin"), ModelArchive.isPickle("model.safetensors")))
        .containsExactly(true, false);
    assertThat(List.of("pytorch_model.bin", "flax_model.msgpack", "tf_model.h5", "model.safetensors", "model.safetensors.index.json"))
        .allMatch(ModelArchive::isWeightFile);
    assertThat(List.of("config.json", "tokenizer.json", "tokenizer.model", "generation_config.json", "README.md"))
        .noneMatch(ModelArchive::isWeightFile);
  }

  /** A tensor a shard holds but the index does not map was silently left out, also from the output's copied index. */
  @Test
  void aShardTensorTheIndexDoesNotMapIsRefused() throws IOException {
    Path sharded = dir.resolve("sharded");
    ArchiveFiles.reshard(SharedData.stories260K(), sharded, 2);
    Path index = sharded.resolve("model.safetensors.index.json");
    String text = Files.readString(index);
    String without = text.replaceFirst("\"model\\.norm\\.weight\":\"model-0000\\d-of-00002\\.safetensors\",?", "");
    assertThat(without).isNotEqualTo(text);
    Files.writeString(index, without.replace(",}", "}"));
    assertThatThrownBy(() -> ModelArchive.open(IO, sharded.toString()))
        .isInstanceOf(ValidationException.class)
        .hasMessageMatching("Invalid model archive .*: shard model-0000\\d-of-00002\\.safetensors holds tensor 'model\\.norm\\.weight',"
            + " which model\\.safetensors\\.index\\.json does not map; add it to weight_map");
  }
}
