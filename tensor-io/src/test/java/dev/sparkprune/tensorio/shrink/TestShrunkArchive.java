package dev.sparkprune.tensorio.shrink;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestShrunkArchive {
  private static final LocalFileIO IO = new LocalFileIO();
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path temp;

  /** A BF16 Llama in three shards: 4 blocks, 8 heads in 4 KV groups of head_dim 8, MLP 96. */
  private ModelArchive syntheticLlama() throws IOException {
    ObjectNode config = SyntheticArchive.llamaConfig(64, 4, 8, 4, 96, 64);
    config.put("attention_bias", true);
    config.putArray("layer_types").add("full_attention").add("sliding_attention").add("full_attention").add("sliding_attention");
    config.put("max_window_layers", 2);
    String source = temp.resolve("source").toString();
    Files.createDirectories(temp.resolve("source"));
    SyntheticArchive.builder(config).dtype(DType.BF16).shards(3).seed(7).build().write(IO, source);
    return ModelArchive.open(IO, source);
  }

  @Test
  void slicesRenumbersAndRewritesConfigByteForByte() throws IOException {
    ModelArchive source = syntheticLlama();
    ModelShape shape = ModelShape.of(source.config());
    int[] channels = everyThird(96);
    ShrinkPlan plan = ShrinkPlan.of(
        shape, List.of(0, 2, 3), Map.of(0, channels, 2, channels, 3, channels), Map.of(0, new int[] {1, 3}, 2, new int[] {0, 1}, 3, new int[] {2, 3}), Map.of());
    String out = temp.resolve("out").toString();
    Files.createDirectories(temp.resolve("out"));
    new ShrunkArchive(source, plan).writeTo(IO, out);
    ModelArchive shrunk = ModelArchive.open(IO, out);

    JsonNode config = shrunk.config().json();
    assertThat(config.get("num_hidden_layers").intValue()).isEqualTo(3);
    assertThat(config.get("intermediate_size").intValue()).isEqualTo(32);
    assertThat(config.get("num_attention_heads").intValue()).isEqualTo(4);
    assertThat(config.get("num_key_value_heads").intValue()).isEqualTo(2);
    assertThat(config.get("head_dim").intValue()).isEqualTo(8);
    assertThat(JSON.convertValue(config.get("layer_types"), List.class))
        .containsExactly("full_attention", "full_attention", "sliding_attention");
    assertThat(config.get("max_window_layers").intValue()).isEqualTo(1);

    assertThat(shrunk.isSharded()).isTrue();
    JsonNode index = JSON.readTree(shrunk.indexText().orElseThrow());
    Set<String> mapped = new HashSet<>();
    index.get("weight_map").fieldNames().forEachRemaining(mapped::add);
    assertThat(mapped).isEqualTo(shrunk.tensorInfos().keySet());
    long bytes = shrunk.tensors().stream().mapToLong(t -> t.info().byteLength()).sum();
    assertThat(index.get("metadata").get("total_size").longValue()).isEqualTo(bytes);
    long droppedBlock = source.tensors().stream().filter(t -> t.name().startsWith("model.layers.1.")).count();
    assertThat(shrunk.tensors()).hasSize((int) (source.tensors().size() - droppedBlock));

    // Every output tensor equals the source's bytes at the kept indices, computed here directly.
    int[] blockMap = {0, 2, 3};
    for (ArchiveTensor tensor : shrunk.tensors()) {
      String name = tensor.name();
      byte[][] expected;
      int newBlock = name.startsWith("model.layers.") ? Integer.parseInt(name.split("\\.")[2]) : -1;
      String sourceName = newBlock < 0 ? name : name.replace("layers." + newBlock + ".", "layers." + blockMap[newBlock] + ".");
      int[][] groups = {{1, 3}, {0, 1}, {2, 3}};
      int[] kv = newBlock < 0 ? null : rowsOfGroups(groups[newBlock], 8);
      int[] q = newBlock < 0 ? null : rowsOfGroups(groups[newBlock], 16);
      int[] rows = null;
      int[] cols = null;
      if (name.matches(".*q_proj\\.(weight|bias)")) {
        rows = q;
      } else if (name.matches(".*[kv]_proj\\.(weight|bias)")) {
        rows = kv;
      } else if (name.endsWith("o_proj.weight")) {
        cols = q;
      } else if (name.matches(".*(gate|up)_proj\\.weight")) {
        rows = channels;
      } else if (name.endsWith("down_proj.weight")) {
        cols = channels;
      }
      expected = elements(source, sourceName, rows, cols);
      assertThat(elements(shrunk, name, null, null)).as(name).isDeepEqualTo(expected);
      assertThat(tensor.dtype()).isEqualTo(DType.BF16);
    }
  }

  @Test
  void writesReplacementsInTheTensorsDtypeAndCopiesTheRest() throws IOException {
    ModelArchive source = syntheticLlama();
    ModelShape shape = ModelShape.of(source.config());
    int[] channels = everyThird(96);
    ShrinkPlan plan = ShrinkPlan.of(shape, List.of(0, 2, 3), Map.of(0, channels, 2, channels, 3, channels), Map.of(), Map.of());
    // A repaired down_proj of the shrunk block 1 (source block 2): [64 x 32], values a BF16 rounding must touch.
    float[] down = new float[64 * 32];
    for (int i = 0; i < down.length; i++) {
      down[i] = (float) Math.sin(i * 0.37) * 1.2345678f;
    }
    String out = temp.resolve("repaired").toString();
    Files.createDirectories(temp.resolve("repaired"));
    new ShrunkArchive(source, plan, TensorReplacements.of(Map.of("model.layers.1.mlp.down_proj.weight", down))).writeTo(IO, out);
    String plainOut = temp.resolve("plain").toString();
    Files.createDirectories(temp.resolve("plain"));
    new ShrunkArchive(source, plan).writeTo(IO, plainOut);
    ModelArchive repaired = ModelArchive.open(IO, out);
    ModelArchive plain = ModelArchive.open(IO, plainOut);

    ArchiveTensor tensor = repaired.tensor("model.layers.1.mlp.down_proj.weight");
    assertThat(tensor.dtype()).isEqualTo(DType.BF16);
    assertThat(tensor.info().shape()).containsExactly(64, 32);
    float[] written;
    try (SafetensorsReader reader = repaired.openShard(tensor.shard())) {
      written = reader.readFloats(tensor.name());
    }
    for (int i = 0; i < down.length; i++) {
      // BF16 is the top 16 bits of the float, rounded to nearest even on the 16 dropped ones.
      int bits = Float.floatToRawIntBits(down[i]);
      float expected = Float.intBitsToFloat(((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16) << 16);
      assertThat(written[i]).as("element %d", i).isEqualTo(expected);
    }
    for (ArchiveTensor other : plain.tensors()) {
      if (!other.name().equals(tensor.name())) {
        assertThat(elements(repaired, other.name(), null, null)).as(other.name()).isDeepEqualTo(elements(plain, other.name(), null, null));
      }
    }

    assertThatThrownBy(() -> new ShrunkArchive(source, plan, TensorReplacements.of(Map.of("model.layers.3.mlp.down_proj.weight", down))))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot replace tensor model.layers.3.mlp.down_proj.weight: the shrunk archive has no tensor of that name");
    ShrunkArchive wrongLength = new ShrunkArchive(source, plan, TensorReplacements.of(Map.of("model.layers.0.mlp.down_proj.weight", new float[5])));
    String shard = source.tensor("model.layers.0.mlp.down_proj.weight").shard();
    assertThatThrownBy(() -> wrongLength.writeShard(shard, new java.io.ByteArrayOutputStream()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot replace tensor model.layers.0.mlp.down_proj.weight: 5 values for shape [64, 32] (2048)");
  }

  @Test
  void refusesPlansThatRemoveEverythingOrMixWidths() throws IOException {
    ModelShape shape = ModelShape.of(syntheticLlama().config());
    assertThatThrownBy(() -> ShrinkPlan.of(shape, List.of(), Map.of(), Map.of(), Map.of()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot shrink: the plan removes every block; keep at least one");
    assertThatThrownBy(() -> ShrinkPlan.of(shape, List.of(0, 1), Map.of(0, new int[] {0, 1}), Map.of(), Map.of()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("every block must keep the same counts");
    assertThatThrownBy(() -> ShrinkPlan.of(shape, List.of(0), Map.of(), Map.of(0, new int[0]), Map.of()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot shrink block 0: it would keep no KV groups");
    assertThatThrownBy(() -> ShrinkPlan.of(shape, List.of(0), Map.of(), Map.of(), Map.of(0, new int[] {0})))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot keep experts of block 0: it is a dense block");
  }

  @Test
  void refusesHeadsNotDivisibleIntoGroups() throws IOException {
    ObjectNode config = SyntheticArchive.llamaConfig(48, 2, 6, 4, 32, 64);
    String location = temp.resolve("odd").toString();
    Files.createDirectories(temp.resolve("odd"));
    Files.writeString(temp.resolve("odd/config.json"), config.toString());
    var parsed = dev.sparkprune.tensorio.archive.ModelConfig.parse(location + "/config.json", config.toString());
    assertThatThrownBy(() -> ModelShape.of(parsed))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot shrink " + location + "/config.json: num_attention_heads 6 is not divisible into num_key_value_heads 4 groups");
  }

  @Test
  void keepsHalfTheExpertsOfEveryMoeFixture() throws IOException {
    for (String arch : List.of("mixtral", "qwen2_moe", "qwen3_moe")) {
      ModelArchive source = ModelArchive.open(IO, ModelFixtures.path(arch).toString());
      ModelShape shape = ModelShape.of(source.config());
      Map<Integer, int[]> experts = new HashMap<>();
      for (int b = 0; b < shape.blocks(); b++) {
        experts.put(b, new int[] {b % 2, 2, 5, 7});
      }
      ShrinkPlan plan = ShrinkPlan.of(shape, List.of(0, 1, 2), Map.of(), Map.of(), experts);
      Path out = temp.resolve(arch);
      Files.createDirectories(out);
      new ShrunkArchive(source, plan).writeTo(IO, out.toString());
      ModelArchive shrunk = ModelArchive.open(IO, out.toString());
      String key = arch.equals("mixtral") ? "num_local_experts" : "num_experts";
      assertThat(shrunk.config().json().get(key).intValue()).as(arch).isEqualTo(4);
      assertThat(shrunk.config().json().get("num_experts_per_tok").intValue()).isEqualTo(2);
      String module = arch.equals("mixtral") ? "block_sparse_moe" : "mlp";
      String down = arch.equals("mixtral") ? "w2" : "down_proj";
      for (int b = 0; b < 3; b++) {
        String prefix = "model.layers." + b + "." + module;
        int[] kept = experts.get(b);
        assertThat(elements(shrunk, prefix + ".gate.weight", null, null))
            .isDeepEqualTo(elements(source, prefix + ".gate.weight", kept, null));
        for (int e = 0; e < 4; e++) {
          assertThat(elements(shrunk, prefix + ".experts." + e + "." + down + ".weight", null, null))
              .isDeepEqualTo(elements(source, prefix + ".experts." + kept[e] + "." + down + ".weight", null, null));
        }
        assertThat(shrunk.findTensor(prefix + ".experts.4." + down + ".weight")).isEmpty();
      }
      if (arch.equals("qwen2_moe")) {
        assertThat(elements(shrunk, "model.layers.1.mlp.shared_expert.down_proj.weight", null, null))
            .isDeepEqualTo(elements(source, "model.layers.1.mlp.shared_expert.down_proj.weight", null, null));
      }
    }
  }

  @Test
  void makesDensePatternExplicitWhenDroppingBlocksOfASparseStepModel() throws IOException {
    ModelArchive source = ModelArchive.open(IO, ModelFixtures.path("qwen3_moe").toString());
    ObjectNode json = source.config().json().deepCopy();
    json.put("decoder_sparse_step", 2);
    var config = dev.sparkprune.tensorio.archive.ModelConfig.parse("qwen3_moe/config.json", json.toString());
    ShrinkPlan plan = ShrinkPlan.of(ModelShape.of(config), List.of(1, 2), Map.of(), Map.of(), Map.of());
    JsonNode shrunk = JSON.readTree(ShrunkConfig.rewrite(config, plan));
    // Source block 1 is sparse ((1 + 1) % 2 == 0), block 2 dense; as new blocks 0 and 1.
    assertThat(shrunk.get("decoder_sparse_step").intValue()).isEqualTo(1);
    assertThat(JSON.convertValue(shrunk.get("mlp_only_layers"), List.class)).containsExactly(1);
    assertThat(shrunk.get("num_hidden_layers").intValue()).isEqualTo(2);
  }

  private static int[] everyThird(int width) {
    int[] kept = new int[width / 3];
    for (int i = 0; i < kept.length; i++) {
      kept[i] = 3 * i + 1;
    }
    return kept;
  }

  private static int[] rowsOfGroups(int[] groups, int width) {
    int[] rows = new int[groups.length * width];
    for (int g = 0; g < groups.length; g++) {
      for (int i = 0; i < width; i++) {
        rows[g * width + i] = groups[g] * width + i;
      }
    }
    return rows;
  }

  /** The raw bytes of each element of a tensor at the given rows and columns (null: all), [element][bytes]. */
  static byte[][] elements(ModelArchive archive, String name, int[] rows, int[] cols) throws IOException {
    ArchiveTensor tensor = archive.tensor(name);
    TensorInfo info = tensor.info();
    int size = info.dtype().byteSize();
    byte[] all;
    try (SafetensorsReader reader = archive.openShard(tensor.shard())) {
      all = reader.readRawRows(reader.tensor(name), 0, (int) info.rows());
    }
    int rowLength = (int) info.rowLength();
    int[] r = rows != null ? rows : ShrinkPlan.range((int) info.rows());
    int[] c = cols != null ? cols : ShrinkPlan.range(rowLength);
    byte[][] out = new byte[r.length * c.length][];
    for (int i = 0; i < r.length; i++) {
      for (int j = 0; j < c.length; j++) {
        int at = (r[i] * rowLength + c[j]) * size;
        out[i * c.length + j] = java.util.Arrays.copyOfRange(all, at, at + size);
      }
    }
    return out;
  }
}
