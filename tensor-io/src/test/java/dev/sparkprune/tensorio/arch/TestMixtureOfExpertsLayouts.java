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

/** The MoE and Qwen3 fixtures' Hugging Face tensor names and shapes, read from their headers. */
class TestMixtureOfExpertsLayouts {
  private static final LocalFileIO IO = new LocalFileIO();

  private static ModelLayout fixture(String arch) throws IOException {
    return Architectures.layout(ModelArchive.open(IO, SharedData.path("fixtures/models/" + arch).toString()));
  }

  @Test
  void mixtralExpertsAreLinearsOfTheirExpertAndTheRouterIsNot() throws IOException {
    ModelLayout layout = fixture("mixtral");
    Block block = layout.blocks().get(1);
    assertThat(block.linears()).hasSize(4 + 8 * 3);
    assertThat(block.routedExperts()).isEqualTo(8);
    assertThat(block.hasSharedExpert()).isFalse();
    Linear w3 = layout.linear("model.layers.1.block_sparse_moe.experts.5.w3.weight").orElseThrow();
    assertThat(w3.expert()).contains(Expert.routed(5));
    assertThat(w3.inputGroup()).isEqualTo("expert.5.input");
    assertThat(w3.outFeatures()).isEqualTo(96);
    Linear w2 = layout.linear("model.layers.1.block_sparse_moe.experts.5.w2.weight").orElseThrow();
    assertThat(w2.inputGroup()).isEqualTo("expert.5.hidden");
    assertThat(w2.inFeatures()).isEqualTo(96);
    assertThat(layout.linear("model.layers.1.self_attn.q_proj.weight").orElseThrow().expert()).isEmpty();
    assertThat(layout.roles()).containsEntry("model.layers.1.block_sparse_moe.gate.weight", TensorRole.ROUTER);
    assertThat(layout.roles()).doesNotContainValue(TensorRole.OTHER);
  }

  @Test
  void qwen2MoeHasASharedExpertWithItsGateAndQkvBiases() throws IOException {
    ModelLayout layout = fixture("qwen2_moe");
    Block block = layout.blocks().get(0);
    assertThat(block.linears()).hasSize(4 + 8 * 3 + 3);
    assertThat(block.hasSharedExpert()).isTrue();
    Linear shared = layout.linear("model.layers.0.mlp.shared_expert.down_proj.weight").orElseThrow();
    assertThat(shared.expert()).contains(Expert.sharedExpert());
    assertThat(shared.inFeatures()).isEqualTo(64);
    assertThat(layout.roles())
        .containsEntry("model.layers.0.mlp.gate.weight", TensorRole.ROUTER)
        .containsEntry("model.layers.0.mlp.shared_expert_gate.weight", TensorRole.SHARED_EXPERT_GATE)
        .containsEntry("model.layers.0.self_attn.q_proj.bias", TensorRole.BIAS)
        .doesNotContainValue(TensorRole.OTHER);
  }

  @Test
  void qwen3FamiliesNormQueriesAndKeysPerHeadWithTheirOwnHeadDim() throws IOException {
    for (String arch : new String[] {"qwen3", "qwen3_moe"}) {
      ModelLayout layout = fixture(arch);
      assertThat(layout.roles()).containsEntry("model.layers.2.self_attn.q_norm.weight", TensorRole.NORM)
          .containsEntry("model.layers.2.self_attn.k_norm.weight", TensorRole.NORM)
          .doesNotContainValue(TensorRole.OTHER);
      assertThat(layout.linear("model.layers.2.self_attn.q_proj.weight").orElseThrow().outFeatures()).isEqualTo(4 * 32);
    }
    assertThat(fixture("qwen3").roles()).doesNotContainKey("lm_head.weight");
  }

  @Test
  void qwenMoeDenseLayersFollowMlpOnlyLayersAndTheSparseStep() throws IOException {
    ObjectNode json = (ObjectNode) new ObjectMapper().readTree(Files.readString(SharedData.path("fixtures/models/qwen3_moe/config.json")));
    json.put("num_hidden_layers", 4).put("decoder_sparse_step", 2).putArray("mlp_only_layers").add(3);
    Blueprint blueprint = Architectures.canonicalBlueprint(ModelConfig.parse("config.json", json.toString()));
    assertThat(blueprint.linears()).filteredOn(linear -> linear.name().equals("mlp.gate_proj")).extracting(Linear::block)
        .containsExactly(0, 2, 3);
    assertThat(blueprint.linears()).filteredOn(Linear::isRoutedExpert).extracting(Linear::block).containsOnly(1);
    assertThat(blueprint.linears()).filteredOn(linear -> linear.name().equals("mlp.gate_proj")).extracting(Linear::outFeatures)
        .containsOnly(128L);

    json.put("num_experts_per_tok", 9);
    assertThatThrownBy(() -> Architectures.canonicalBlueprint(ModelConfig.parse("config.json", json.toString())))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid model config config.json: num_experts_per_tok 9 must be between 1 and the number of experts 8");
  }
}
