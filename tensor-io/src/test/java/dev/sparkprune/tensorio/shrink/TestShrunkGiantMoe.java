package dev.sparkprune.tensorio.shrink;

import static dev.sparkprune.tensorio.shrink.TestShrunkArchive.elements;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.arch.TensorRole;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Expert removal on the DeepSeek-V3, GLM-4.5 and gpt-oss fixtures, byte for byte: router rows,
 * router and correction bias entries, separate expert tensors renumbered and fused ones sliced
 * by their first dimension; config counts and group settings kept valid; the
 * multi-token-prediction layer dropped with num_nextn_predict_layers 0; bad plans refused.
 */
class TestShrunkGiantMoe {
  private static final LocalFileIO IO = new LocalFileIO();
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path temp;

  private ModelArchive shrink(ModelArchive source, ShrinkPlan plan, String name) throws IOException {
    Path out = temp.resolve(name);
    Files.createDirectories(out);
    new ShrunkArchive(source, plan).writeTo(IO, out.toString());
    return ModelArchive.open(IO, out.toString());
  }

  @Test
  void deepseekV3KeepsRouterRowsCorrectionBiasAndRenumberedExpertsAndDropsTheMtpLayer() throws IOException {
    ModelArchive source = ModelArchive.open(IO, ModelFixtures.path("deepseek_v3").toString());
    ModelShape shape = ModelShape.of(source.config());
    assertThat(shape.mtpBlocks()).isEqualTo(1);
    Map<Integer, int[]> experts = new HashMap<>();
    for (int b = 1; b < 4; b++) {
      experts.put(b, ModelFixtures.halfPerGroup(16, 4, b));
    }
    ModelArchive shrunk = shrink(source, ShrinkPlan.of(shape, List.of(0, 1, 3), Map.of(), Map.of(), experts), "deepseek_v3");

    JsonNode config = shrunk.config().json();
    assertThat(config.get("num_hidden_layers").intValue()).isEqualTo(3);
    assertThat(config.get("n_routed_experts").intValue()).isEqualTo(8);
    assertThat(config.get("num_experts_per_tok").intValue()).isEqualTo(4);
    assertThat(config.get("n_group").intValue()).isEqualTo(4);
    assertThat(config.get("topk_group").intValue()).isEqualTo(2);
    assertThat(config.get("first_k_dense_replace").intValue()).isEqualTo(1);
    assertThat(config.get("num_nextn_predict_layers").intValue()).isZero();
    // DeepseekV3Config derives head_dim (qk_rope_head_dim); an explicit key would override it.
    assertThat(config.has("head_dim")).isFalse();
    for (int target = 1; target < 3; target++) {
      int b = target == 1 ? 1 : 3;
      int[] kept = experts.get(b);
      String from = "model.layers." + b + ".mlp.";
      String to = "model.layers." + target + ".mlp.";
      assertThat(elements(shrunk, to + "gate.weight", null, null)).isDeepEqualTo(elements(source, from + "gate.weight", kept, null));
      assertThat(elements(shrunk, to + "gate.e_score_correction_bias", null, null))
          .isDeepEqualTo(elements(source, from + "gate.e_score_correction_bias", kept, null));
      for (int e = 0; e < kept.length; e++) {
        assertThat(elements(shrunk, to + "experts." + e + ".up_proj.weight", null, null))
            .isDeepEqualTo(elements(source, from + "experts." + kept[e] + ".up_proj.weight", null, null));
      }
      assertThat(shrunk.findTensor(to + "experts.8.up_proj.weight")).isEmpty();
      assertThat(elements(shrunk, to + "shared_experts.down_proj.weight", null, null))
          .isDeepEqualTo(elements(source, from + "shared_experts.down_proj.weight", null, null));
    }
    assertThat(shrunk.tensorInfos().keySet()).noneMatch(name -> name.contains("eh_proj") || name.contains("shared_head"));
    ModelLayout layout = Architectures.layout(shrunk);
    assertThat(layout.blocks()).hasSize(3);
    assertThat(layout.roles()).doesNotContainValue(TensorRole.MTP).doesNotContainValue(TensorRole.OTHER);
  }

  @Test
  void glm4MoeDroppingTheDenseBlockMakesEveryKeptBlockSparse() throws IOException {
    ModelArchive source = ModelArchive.open(IO, ModelFixtures.path("glm4_moe").toString());
    ModelShape shape = ModelShape.of(source.config());
    Map<Integer, int[]> experts = new HashMap<>();
    for (int b = 1; b < 4; b++) {
      experts.put(b, ModelFixtures.halfPerGroup(16, 8, b));
    }
    ModelArchive shrunk = shrink(source, ShrinkPlan.of(shape, List.of(1, 2, 3), Map.of(), Map.of(), experts), "glm4_moe");
    JsonNode config = shrunk.config().json();
    assertThat(config.get("first_k_dense_replace").intValue()).isZero();
    assertThat(config.get("n_routed_experts").intValue()).isEqualTo(8);
    assertThat(config.get("num_nextn_predict_layers").intValue()).isZero();
    ModelLayout layout = Architectures.layout(shrunk);
    assertThat(layout.blocks()).allMatch(block -> block.routedExperts() == 8);
    assertThat(elements(shrunk, "model.layers.0.self_attn.q_proj.bias", null, null))
        .isDeepEqualTo(elements(source, "model.layers.1.self_attn.q_proj.bias", null, null));
  }

  @Test
  void gptOssSlicesFusedExpertsAndRouterBiasByExpertAndSinksByHead() throws IOException {
    ModelArchive source = ModelArchive.open(IO, ModelFixtures.path("gpt_oss").toString());
    ModelShape shape = ModelShape.of(source.config());
    assertThat(shape.intermediate()).isZero();
    // Blocks 1 and 2 go together: sliding and full attention keep alternating.
    Map<Integer, int[]> experts = Map.of(0, new int[] {0, 3, 4, 7}, 3, new int[] {1, 2, 5, 6});
    Map<Integer, int[]> groups = Map.of(0, new int[] {1}, 3, new int[] {0});
    ModelArchive shrunk = shrink(source, ShrinkPlan.of(shape, List.of(0, 3), Map.of(), groups, experts), "gpt_oss");
    JsonNode config = shrunk.config().json();
    assertThat(config.get("num_local_experts").intValue()).isEqualTo(4);
    assertThat(config.get("num_experts_per_tok").intValue()).isEqualTo(2);
    assertThat(config.get("experts_per_token").intValue()).isEqualTo(2);
    assertThat(config.get("num_attention_heads").intValue()).isEqualTo(2);
    assertThat(config.get("num_key_value_heads").intValue()).isEqualTo(1);
    assertThat(JSON.convertValue(config.get("layer_types"), List.class)).containsExactly("sliding_attention", "full_attention");
    int[] kept = experts.get(3);
    String from = "model.layers.3.";
    String to = "model.layers.1.";
    for (String name : new String[] {
        "mlp.experts.gate_up_proj", "mlp.experts.gate_up_proj_bias", "mlp.experts.down_proj", "mlp.experts.down_proj_bias",
        "mlp.router.weight", "mlp.router.bias"}) {
      assertThat(elements(shrunk, to + name, null, null)).as(name).isDeepEqualTo(elements(source, from + name, kept, null));
    }
    assertThat(shrunk.tensor(to + "mlp.experts.gate_up_proj").shape()).containsExactly(4, 128, 192);
    // KV group g of 2 holds query heads 2g and 2g + 1.
    assertThat(elements(shrunk, to + "self_attn.sinks", null, null)).isDeepEqualTo(elements(source, from + "self_attn.sinks", new int[] {0, 1}, null));
    assertThat(elements(shrunk, "model.layers.0.self_attn.sinks", null, null))
        .isDeepEqualTo(elements(source, "model.layers.0.self_attn.sinks", new int[] {2, 3}, null));
    assertThat(Architectures.layout(shrunk).blocks()).hasSize(2);
  }

  @Test
  void plansThatBreakGroupLimitedRoutingOrLatentAttentionAreRefused() throws IOException {
    ModelShape deepseek = ModelShape.of(ModelArchive.open(IO, ModelFixtures.path("deepseek_v3").toString()).config());
    List<Integer> all = List.of(0, 1, 2, 3);
    assertThatThrownBy(() -> ShrinkPlan.of(deepseek, all, Map.of(), Map.of(), Map.of(1, new int[] {0, 1, 2, 4, 5, 8, 9, 12})))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot keep experts [0, 1, 2, 4, 5, 8, 9, 12] of block 1: routing chooses within n_group 4 groups of 4 experts, so"
            + " every group must keep the same number, but group 0 keeps 3 and group 1 keeps 2; choose the kept experts group by group");
    assertThatThrownBy(() -> ShrinkPlan.of(deepseek, all, Map.of(), Map.of(), Map.of(2, new int[] {0, 4, 8, 12})))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot keep 4 experts of block 2: routing scores each of the n_group 4 groups by its two best experts, so keep at"
            + " least 2 per group (8 in all)");
    assertThatThrownBy(() -> ShrinkPlan.of(deepseek, all, Map.of(), Map.of(0, new int[] {0, 1}), Map.of()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot remove attention heads of block 0: deepseek_v3 has multi-head latent attention (one latent key/value"
            + " projection feeds every head); shrink depth, dense MLP width or experts instead");
    ModelShape gptOss = ModelShape.of(ModelArchive.open(IO, ModelFixtures.path("gpt_oss").toString()).config());
    assertThatThrownBy(() -> ShrinkPlan.of(gptOss, List.of(0, 2, 3), Map.of(), Map.of(), Map.of()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot keep blocks [0, 2, 3] of gpt_oss: sliding-window and full attention would no longer alternate from a sliding"
            + " first layer, which gpt-oss runtimes (its reference code, llama.cpp, vLLM) assume whatever layer_types says; drop blocks"
            + " in adjacent pairs");
    // Top-k softmax routing has no groups: any 4 of 8.
    int[] any = {0, 1, 2, 7};
    assertThat(ShrinkPlan.of(gptOss, all, Map.of(), Map.of(), Map.of(0, any, 1, any, 2, any, 3, any)).experts()).isEqualTo(4);
  }
}
