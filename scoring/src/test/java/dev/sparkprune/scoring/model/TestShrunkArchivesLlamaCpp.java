package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.ArchiveFiles;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.repair.RepairSettings;
import dev.sparkprune.scoring.repair.SequentialRepair;
import dev.sparkprune.tensorio.LlamaCppReference;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.shrink.TensorReplacements;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Shrunk archives are standard ones: llama.cpp's own converter reads them, and the logits of
 * sparkprune's forward pass on them equal llama.cpp's to 1e-3 (a block dropped, half the KV
 * groups (all of them on qwen2_moe, see ShrinkSettings, and on DeepSeek-V3's latent attention)
 * and, on dense blocks, 3/4 of the MLP channels kept; on MoE fixtures half the experts, half of
 * each group under group-limited routing; the MTP layers of DeepSeek-V3 and GLM-4.5 dropped),
 * and so do repaired ones (the same cuts with o_proj and down_proj refitted by
 * {@link SequentialRepair}, encoded in the archive's dtype). gpt-oss is shrunk from its fixture
 * with rope_scaling.truncate true, where llama.cpp's yarn agrees with transformers' (see
 * TestLlamaCppForward). Skips where bin/setup-llamacpp-reference has not run.
 */
class TestShrunkArchivesLlamaCpp {
  private static final LocalFileIO IO = new LocalFileIO();

  @TempDir Path temp;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"stories260K", "llama", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "glm4_moe", "gpt_oss"})
  void shrunkLogitsEqualLlamaCpp(String arch) throws IOException {
    LlamaCppReference.require();
    Path location = arch.equals("stories260K") ? SharedData.stories260K() : ModelFixtures.path(arch);
    if (arch.equals("gpt_oss")) {
      location = withRoundedYarnRamp(location, temp.resolve("gpt_oss_truncate"));
    }
    ModelArchive source = ModelArchive.open(IO, location.toString());
    Path out = temp.resolve(arch);
    Files.createDirectories(out);
    new ShrunkArchive(source, plan(source, arch)).writeTo(IO, out.toString());
    int[] tokens = arch.equals("stories260K") ? storyTokens() : ModelFixtures.goldenTokens(arch);
    TestLlamaCppForward.assertLogitsEqualLlamaCpp(out, tokens, 1e-3);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"stories260K", "llama", "qwen2_moe"})
  void repairedLogitsEqualLlamaCpp(String arch) throws IOException {
    LlamaCppReference.require();
    Path location = arch.equals("stories260K") ? SharedData.stories260K() : ModelFixtures.path(arch);
    ModelArchive source = ModelArchive.open(IO, location.toString());
    ShrinkPlan plan = plan(source, arch);
    Path raw = temp.resolve(arch + "-raw");
    Files.createDirectories(raw);
    new ShrunkArchive(source, plan).writeTo(IO, raw.toString());
    // Calibration: 2 chunks of 2 windows of 48 ids (the repair needs tokens, not text).
    List<int[][]> chunks = new ArrayList<>();
    int vocab = source.config().requireInt("vocab_size");
    for (int c = 0; c < 2; c++) {
      int[][] chunk = new int[2][48];
      for (int s = 0; s < 2; s++) {
        chunk[s][0] = 1;
        for (int t = 1; t < 48; t++) {
          chunk[s][t] = (31 * t + 17 * s + 101 * c) % (vocab - 3) + 3;
        }
      }
      chunks.add(chunk);
    }
    SequentialRepair.Result result;
    try (DecoderModel dense = Models.open(source, NetlibLinearAlgebra.defaultInstance());
        DecoderModel shrunk = Models.open(ModelArchive.open(IO, raw.toString()), NetlibLinearAlgebra.defaultInstance())) {
      result = SequentialRepair.run(dense, shrunk, plan, RepairSettings.DEFAULTS, chunks, List.of(), NetlibLinearAlgebra.defaultInstance());
    }
    assertThat(result.tensors()).isNotEmpty();
    Path out = temp.resolve(arch + "-repaired");
    Files.createDirectories(out);
    new ShrunkArchive(source, plan, TensorReplacements.of(result.tensors())).writeTo(IO, out.toString());
    int[] tokens = arch.equals("stories260K") ? storyTokens() : ModelFixtures.goldenTokens(arch);
    TestLlamaCppForward.assertLogitsEqualLlamaCpp(out, tokens, 1e-3);
  }

  /** Block 1 dropped (blocks 1 and 2 on gpt-oss), every other KV group (not on qwen2_moe), 3/4 of the MLP channels of dense blocks, every other expert. */
  private static ShrinkPlan plan(ModelArchive source, String arch) {
    ModelShape shape = ModelShape.of(source.config());
    List<Integer> kept = new ArrayList<>();
    Map<Integer, int[]> channels = new HashMap<>();
    Map<Integer, int[]> groups = new HashMap<>();
    Map<Integer, int[]> experts = new HashMap<>();
    for (int b = 0; b < shape.blocks(); b++) {
      // gpt-oss drops blocks 1 and 2: its sliding and full layers must keep alternating.
      if (b == 1 || (b == 2 && arch.equals("gpt_oss"))) {
        continue;
      }
      kept.add(b);
      if (!shape.modelType().equals("qwen2_moe") && shape.headsRemovable()) {
        // llama.cpp's qwen2moe attention is hidden x hidden: shrink refuses --heads-keep there.
        groups.put(b, everyOther(shape.kvHeads(), b % 2));
      }
      if (shape.isSparse(b)) {
        experts.put(b, everyOther(shape.experts(), b % 2));
      } else {
        int keep = shape.intermediate() * 3 / 4 / 8 * 8;
        int[] first = new int[keep];
        for (int j = 0; j < keep; j++) {
          first[j] = (j * 7 + b) % shape.intermediate();
        }
        java.util.Arrays.sort(first);
        channels.put(b, distinct(first, shape.intermediate(), keep));
      }
    }
    return ShrinkPlan.of(shape, kept, channels, groups, experts);
  }

  /** A copy of the gpt-oss archive whose yarn rounds its ramp bounds, as ggml always does. */
  private static Path withRoundedYarnRamp(Path source, Path copy) throws IOException {
    ArchiveFiles.copyNonWeightFiles(source, copy);
    Files.copy(source.resolve("model.safetensors"), copy.resolve("model.safetensors"));
    ObjectNode config = (ObjectNode) new ObjectMapper().readTree(copy.resolve("config.json").toFile());
    ((ObjectNode) config.get("rope_scaling")).put("truncate", true);
    Files.writeString(copy.resolve("config.json"), config.toString());
    return copy;
  }

  /** Every other index from {@code offset} (at least one). */
  private static int[] everyOther(int count, int offset) {
    int[] kept = new int[Math.max(1, (count - offset + 1) / 2)];
    for (int i = 0; i < kept.length; i++) {
      kept[i] = Math.min(count - 1, offset + 2 * i);
    }
    return kept;
  }

  /** {@code keep} distinct ascending indices below {@code width}, starting from a scattered choice. */
  private static int[] distinct(int[] sorted, int width, int keep) {
    java.util.TreeSet<Integer> set = new java.util.TreeSet<>();
    for (int j : sorted) {
      set.add(j);
    }
    for (int j = 0; set.size() < keep; j++) {
      set.add(j);
    }
    return set.stream().mapToInt(Integer::intValue).toArray();
  }

  private static int[] storyTokens() {
    int[] tokens = new int[64];
    tokens[0] = 1;
    for (int t = 1; t < tokens.length; t++) {
      tokens[t] = (37 * t + 11) % 500 + 3;
    }
    return tokens;
  }
}
