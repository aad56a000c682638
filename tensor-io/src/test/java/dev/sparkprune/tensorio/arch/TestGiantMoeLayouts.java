package dev.sparkprune.tensorio.arch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.ModelConfig;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * DeepSeek-V3, GLM-4.5 and gpt-oss fixtures' tensor names and shapes as transformers stores
 * them, read from their headers; and the config checks of their routers, MTP layers and rope.
 */
class TestGiantMoeLayouts {
  private static final LocalFileIO IO = new LocalFileIO();

  private static Path fixture(String arch) {
    return SharedData.path("fixtures/models/" + arch);
  }

  private static ModelLayout layout(String arch) throws IOException {
    return Architectures.layout(ModelArchive.open(IO, fixture(arch).toString()));
  }

  private static ObjectNode config(String arch) throws IOException {
    return (ObjectNode) new ObjectMapper().readTree(Files.readString(fixture(arch).resolve("config.json")));
  }

  private static Map<String, TensorInfo> tensors(String arch) throws IOException {
    return ModelArchive.open(IO, fixture(arch).toString()).tensorInfos();
  }

  private static ModelLayout layoutWith(String arch, Map<String, TensorInfo> tensors, Consumer<ObjectNode> change) throws IOException {
    ObjectNode json = config(arch);
    change.accept(json);
    return Architectures.layout(ModelConfig.parse("config.json", json.toString()), tensors, "archive");
  }

  private static void assertRefused(String arch, Consumer<ObjectNode> change, String message) throws IOException {
    Map<String, TensorInfo> tensors = tensors(arch);
    assertThatThrownBy(() -> layoutWith(arch, tensors, change)).isInstanceOf(ValidationException.class).hasMessage(message);
  }

  @Test
  void deepseekV3HasLatentAttentionDenseFirstBlocksGroupLimitedExpertsAndAnMtpLayer() throws IOException {
    ModelLayout layout = layout("deepseek_v3");
    assertThat(layout.blocks()).hasSize(4);
    assertThat(layout.blocks().get(0).linears()).extracting(Linear::name).containsExactly(
        "self_attn.q_a_proj", "self_attn.kv_a_proj_with_mqa", "self_attn.q_b_proj", "self_attn.kv_b_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");
    Block sparse = layout.blocks().get(1);
    assertThat(sparse.routedExperts()).isEqualTo(16);
    assertThat(sparse.hasSharedExpert()).isTrue();
    assertThat(sparse.linears()).hasSize(5 + 16 * 3 + 3);
    Linear kvB = layout.linear("model.layers.1.self_attn.kv_b_proj.weight").orElseThrow();
    assertThat(kvB.outFeatures()).isEqualTo(4 * (32 + 32));
    assertThat(kvB.inFeatures()).isEqualTo(64);
    assertThat(kvB.inputGroup()).isEqualTo("kv_latent");
    assertThat(layout.linear("model.layers.1.self_attn.q_b_proj.weight").orElseThrow().inputGroup()).isEqualTo("query_latent");
    assertThat(layout.linear("model.layers.1.mlp.shared_experts.gate_proj.weight").orElseThrow().outFeatures()).isEqualTo(2 * 48);
    assertThat(layout.roles())
        .containsEntry("model.layers.1.mlp.gate.weight", TensorRole.ROUTER)
        .containsEntry("model.layers.1.mlp.gate.e_score_correction_bias", TensorRole.ROUTER_BIAS)
        .containsEntry("model.layers.1.self_attn.kv_a_layernorm.weight", TensorRole.NORM)
        .containsEntry("model.layers.4.eh_proj.weight", TensorRole.MTP)
        .containsEntry("model.layers.4.mlp.experts.15.down_proj.weight", TensorRole.MTP)
        .containsEntry("model.layers.4.shared_head.head.weight", TensorRole.MTP)
        .doesNotContainValue(TensorRole.OTHER);
    // The MTP layer is known, but it is not a block: nothing of it is prunable.
    assertThat(layout.linears()).noneMatch(linear -> linear.tensorName().startsWith("model.layers.4."));
  }

  @Test
  void glm4MoeHasBiasesQkNormsDenseFirstBlockAndAnMtpLayer() throws IOException {
    ModelLayout layout = layout("glm4_moe");
    assertThat(layout.blocks()).hasSize(4);
    assertThat(layout.blocks().get(0).routedExperts()).isZero();
    assertThat(layout.blocks().get(3).routedExperts()).isEqualTo(16);
    assertThat(layout.linear("model.layers.2.self_attn.q_proj.weight").orElseThrow().biasName()).contains("model.layers.2.self_attn.q_proj.bias");
    assertThat(layout.linear("model.layers.2.self_attn.o_proj.weight").orElseThrow().biasName()).isEmpty();
    assertThat(layout.roles())
        .containsEntry("model.layers.2.self_attn.q_norm.weight", TensorRole.NORM)
        .containsEntry("model.layers.2.mlp.gate.e_score_correction_bias", TensorRole.ROUTER_BIAS)
        .containsEntry("model.layers.4.self_attn.k_norm.weight", TensorRole.MTP)
        .doesNotContainValue(TensorRole.OTHER);
  }

  @Test
  void gptOssHasSinksRouterBiasesAndFusedExpertTensors() throws IOException {
    ModelLayout layout = layout("gpt_oss");
    assertThat(layout.blocks()).hasSize(4);
    // Attention, then each expert's gate, up and down: slices of the fused tensors, named alone.
    List<Linear> linears = layout.blocks().get(0).linears();
    assertThat(linears).hasSize(4 + 8 * 3);
    assertThat(linears.subList(0, 7)).extracting(Linear::name).containsExactly("self_attn.q_proj", "self_attn.k_proj",
        "self_attn.v_proj", "self_attn.o_proj", "mlp.experts.0.gate_proj", "mlp.experts.0.up_proj", "mlp.experts.0.down_proj");
    Linear up = layout.linear("model.layers.0.mlp.experts.3.up_proj.weight").orElseThrow();
    assertThat(up.storedTensorName()).isEqualTo("model.layers.0.mlp.experts.gate_up_proj");
    assertThat(up.isRoutedExpert()).isTrue();
    assertThat(up.inputGroup()).isEqualTo("expert.3.input");
    assertThat(new long[] {up.outFeatures(), up.inFeatures()}).containsExactly(96, 128);
    // transformers' GptOssExperts: gate_up[..., ::2] is gate, gate_up[..., 1::2] up; down is down_proj[e].
    FusedExpertSlice upSlice = up.fusedSlice().orElseThrow();
    assertThat(upSlice.expert()).isEqualTo(3);
    assertThat(upSlice.column(0)).isEqualTo(1);
    assertThat(upSlice.column(5)).isEqualTo(11);
    assertThat(layout.linear("model.layers.0.mlp.experts.3.gate_proj.weight").orElseThrow().fusedSlice().orElseThrow().column(5))
        .isEqualTo(10);
    Linear down = layout.linear("model.layers.0.mlp.experts.3.down_proj.weight").orElseThrow();
    assertThat(down.storedTensorName()).isEqualTo("model.layers.0.mlp.experts.down_proj");
    assertThat(down.inputGroup()).isEqualTo("expert.3.hidden");
    assertThat(new long[] {down.outFeatures(), down.inFeatures()}).containsExactly(128, 96);
    assertThat(down.fusedSlice().orElseThrow().column(5)).isEqualTo(5);
    assertThat(layout.linear("model.layers.0.self_attn.o_proj.weight").orElseThrow().biasName()).isPresent();
    assertThat(layout.roles())
        .containsEntry("model.layers.0.self_attn.sinks", TensorRole.ATTENTION_SINKS)
        .containsEntry("model.layers.0.mlp.router.weight", TensorRole.ROUTER)
        .containsEntry("model.layers.0.mlp.router.bias", TensorRole.ROUTER_BIAS)
        .containsEntry("model.layers.0.mlp.experts.gate_up_proj", TensorRole.EXPERTS)
        .containsEntry("model.layers.0.mlp.experts.gate_up_proj_bias", TensorRole.BIAS)
        .containsEntry("model.layers.0.mlp.experts.down_proj", TensorRole.EXPERTS)
        .doesNotContainValue(TensorRole.OTHER);
    MixtureOfExperts moe = MixtureOfExperts.of(ModelArchive.open(IO, fixture("gpt_oss").toString()).config()).orElseThrow();
    assertThat(moe.scoring()).isEqualTo(MixtureOfExperts.Scoring.TOP_K_SOFTMAX);
    assertThat(moe.fused()).isTrue();
    assertThat(moe.isSparse(0)).isTrue();
    assertThat(GptOssArchitecture.layerTypes(ModelConfig.parse("c", config("gpt_oss").toString()), 4)).containsExactly(true, false, true, false);
  }

  @Test
  void kimiK2AndMoonlightLayoutsAreDeepseekV3s() throws IOException {
    Map<String, TensorInfo> tensors = tensors("deepseek_v3");
    assertThat(layoutWith("deepseek_v3", tensors, c -> c.put("model_type", "kimi_k2")).blocks()).hasSize(4);
    // Moonlight (and DeepSeek-V2-Lite-shaped checkpoints) project queries with one q_proj.
    Map<String, TensorInfo> noQueryLora = new LinkedHashMap<>();
    tensors.forEach((name, info) -> {
      if (!name.contains("q_a_") && !name.contains("q_b_proj")) {
        noQueryLora.put(name, info);
      }
    });
    for (int b = 0; b < 5; b++) {
      String name = "model.layers." + b + ".self_attn.q_proj.weight";
      noQueryLora.put(name, new TensorInfo(name, tensors.get("model.layers.0.self_attn.q_b_proj.weight").dtype(), new long[] {4 * 48, 192}, 0, 0));
    }
    ModelLayout layout = layoutWith("deepseek_v3", noQueryLora, c -> c.putNull("q_lora_rank"));
    assertThat(layout.linear("model.layers.3.self_attn.q_proj.weight").orElseThrow().inFeatures()).isEqualTo(192);
    assertThat(layout.roles()).containsEntry("model.layers.4.self_attn.q_proj.weight", TensorRole.MTP).doesNotContainValue(TensorRole.OTHER);
  }

  @Test
  void badRouterSettingsAreRefusedInOneLine() throws IOException {
    assertRefused("deepseek_v3", c -> c.put("n_group", 3),
        "Invalid model config config.json: n_group 3 does not divide n_routed_experts 16; routing needs equal groups of experts");
    assertRefused("deepseek_v3", c -> c.put("n_group", 16),
        "Invalid model config config.json: n_group 16 leaves 1 expert(s) per group of n_routed_experts 16; group scores need at least 2");
    assertRefused("glm4_moe", c -> c.put("topk_group", 3),
        "Invalid model config config.json: topk_group 3 exceeds n_group 2; routing chooses topk_group of the n_group groups");
    assertRefused("deepseek_v3", c -> c.put("num_experts_per_tok", 17),
        "Invalid model config config.json: num_experts_per_tok 17 must be between 1 and the number of experts 16");
    assertRefused("deepseek_v3", c -> c.put("routed_scaling_factor", -1.0),
        "Invalid model config config.json: routed_scaling_factor must be a positive number, found -1.0");
    assertRefused("deepseek_v3", c -> c.put("scoring_func", "softmax"),
        "Cannot run model_type deepseek_v3: scoring_func 'softmax' in config.json is not implemented; transformers' deepseek_v3 router computes sigmoid scores");
    assertRefused("deepseek_v3", c -> c.put("moe_layer_freq", 2),
        "Cannot run model_type deepseek_v3: moe_layer_freq 2 in config.json is not implemented; transformers puts a MoE in every layer from"
            + " first_k_dense_replace on (moe_layer_freq 1)");
    assertRefused("deepseek_v3", c -> c.put("num_key_value_heads", 2),
        "Invalid model config config.json: num_key_value_heads 2 must equal num_attention_heads 4 for multi-head latent attention");
    assertRefused("gpt_oss", c -> c.put("swiglu_limit", 5.0),
        "Cannot run model_type gpt_oss: swiglu_limit 5.0 in config.json is not implemented; transformers' gpt-oss experts clamp at 7.0");
    assertRefused("gpt_oss", c -> c.putArray("layer_types").add("sliding_attention"),
        "Invalid model config config.json: layer_types must list one type per layer (4), found [\"sliding_attention\"]");
    assertRefused("deepseek_v3", c -> c.put("first_k_dense_replace", -1),
        "Invalid model config config.json: first_k_dense_replace must be a non-negative integer, found -1");
  }

  @Test
  void mtpLayersMustMatchTheConfig() throws IOException {
    Map<String, TensorInfo> withoutMtp = new LinkedHashMap<>(tensors("glm4_moe"));
    withoutMtp.keySet().removeIf(name -> name.startsWith("model.layers.4."));
    assertThatThrownBy(() -> layoutWith("glm4_moe", withoutMtp, c -> {}))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid model archive archive: config config.json declares num_nextn_predict_layers 1 but the archive has no"
            + " multi-token-prediction layer (model.layers.4.*); set num_nextn_predict_layers to 0");
    assertThat(layoutWith("glm4_moe", withoutMtp, c -> c.put("num_nextn_predict_layers", 0)).roles()).doesNotContainValue(TensorRole.MTP);
    assertRefused("deepseek_v3", c -> c.put("num_nextn_predict_layers", 0),
        "Invalid model config config.json: num_hidden_layers is 4 but archive archive holds 5 blocks (model.layers.0 to model.layers.4); set"
            + " num_hidden_layers to 5");
    Map<String, TensorInfo> partial = new LinkedHashMap<>(tensors("deepseek_v3"));
    partial.remove("model.layers.4.eh_proj.weight");
    assertThatThrownBy(() -> layoutWith("deepseek_v3", partial, c -> {}))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid model archive archive: tensor 'model.layers.4.eh_proj.weight' that deepseek_v3 needs is missing");
  }

  @Test
  void yarnIsImplementedAndItsSettingsChecked() throws IOException {
    assertThat(layout("gpt_oss").blocks()).hasSize(4);
    assertRefused("gpt_oss", c -> ((ObjectNode) c.get("rope_scaling")).put("truncate", "no"),
        "Invalid model config config.json: rope_scaling.truncate must be true or false, found \"no\"");
    assertRefused("deepseek_v3", c -> ((ObjectNode) c.get("rope_scaling")).put("beta_fast", -32),
        "Invalid model config config.json: rope_scaling.beta_fast must be a non-negative number, found -32");
    assertRefused("deepseek_v3", c -> ((ObjectNode) c.get("rope_scaling")).put("original_max_position_embeddings", 0),
        "Invalid model config config.json: rope_scaling.original_max_position_embeddings must be a positive integer, found 0");
    assertRefused("deepseek_v3", c -> ((ObjectNode) c.get("rope_scaling")).put("type", "dynamic"),
        "Cannot run model_type deepseek_v3: rope_scaling type 'dynamic' in config.json is not implemented; sparkprune implements"
            + " [default, linear, llama3, longrope, yarn]");
  }
}
