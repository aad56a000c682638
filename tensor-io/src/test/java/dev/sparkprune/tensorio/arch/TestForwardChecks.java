package dev.sparkprune.tensorio.arch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.ModelConfig;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a forward pass cannot compute exactly is refused when the layout is resolved (inspect and
 * the prune plan), one line each, whatever the architecture.
 */
class TestForwardChecks {
  private static final LocalFileIO IO = new LocalFileIO();

  @TempDir Path dir;

  /** A two-block archive of {@code config}; returns its tensors. */
  private Map<String, TensorInfo> archive(String name, ObjectNode config) throws IOException {
    Path path = dir.resolve(name);
    SyntheticArchive.builder(config).dtype(DType.F32).seed(1).build().write(IO, path.toString());
    return ModelArchive.open(IO, path.toString()).tensorInfos();
  }

  private ModelLayout layoutWith(ObjectNode config, Map<String, TensorInfo> tensors, Consumer<ObjectNode> change) {
    ObjectNode changed = config.deepCopy();
    change.accept(changed);
    return Architectures.layout(ModelConfig.parse("config.json", changed.toString()), tensors, "archive");
  }

  private void assertRefused(ObjectNode config, Map<String, TensorInfo> tensors, Consumer<ObjectNode> change, String message) {
    assertThatThrownBy(() -> layoutWith(config, tensors, change)).isInstanceOf(ValidationException.class).hasMessage(message);
  }

  @Test
  void activationsALlamaForwardPassDoesNotComputeAreRefused() throws IOException {
    ObjectNode llama = SyntheticArchive.llamaConfig(32, 2, 4, 2, 48, 64);
    Map<String, TensorInfo> tensors = archive("llama", llama);
    for (String act : new String[] {"gelu", "relu", "swish_banana"}) {
      assertRefused(llama, tensors, c -> c.put("hidden_act", act),
          "Cannot run model_type llama: hidden_act \"" + act + "\" in config.json is not implemented; its forward pass computes [silu, swish]");
    }
    assertThat(layoutWith(llama, tensors, c -> c.put("hidden_act", "silu")).blocks()).hasSize(2);
  }

  @Test
  void eachArchitectureAcceptsOnlyItsOwnActivations() throws IOException {
    ObjectNode gpt2 = SyntheticArchive.gpt2Config(32, 2, 4, 64, 32);
    Map<String, TensorInfo> tensors = archive("gpt2", gpt2);
    assertRefused(gpt2, tensors, c -> c.put("activation_function", "silu"),
        "Cannot run model_type gpt2: activation_function \"silu\" in config.json is not implemented; its forward pass computes [gelu, gelu_new, gelu_pytorch_tanh]");
    ObjectNode opt = SyntheticArchive.optConfig(32, 2, 4, 64, 64, 32, 32, true);
    assertRefused(opt, archive("opt", opt), c -> c.put("activation_function", "gelu"),
        "Cannot run model_type opt: activation_function \"gelu\" in config.json is not implemented; its forward pass computes [relu]");
    ObjectNode neox = SyntheticArchive.gptNeoxConfig(32, 2, 4, 64, 64, 1.0, true);
    assertRefused(neox, archive("neox", neox), c -> c.put("hidden_act", "gelu_new"),
        "Cannot run model_type gpt_neox: hidden_act \"gelu_new\" in config.json is not implemented; its forward pass computes [gelu]");
  }

  @Test
  void ropeSettingsTheRotaryEmbeddingDoesNotImplementAreRefused() throws IOException {
    ObjectNode llama = SyntheticArchive.llamaConfig(32, 2, 4, 2, 48, 64);
    Map<String, TensorInfo> tensors = archive("llama", llama);
    assertRefused(llama, tensors, c -> c.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0).put("beta_fast", -1.0),
        "Invalid model config config.json: rope_scaling.beta_fast must be a non-negative number, found -1.0");
    assertRefused(llama, tensors, c -> c.putObject("rope_scaling").put("factor", 4.0),
        "Cannot run model_type llama: rope_scaling type '' in config.json is not implemented; sparkprune implements [default, linear, llama3, longrope, yarn]");
    assertRefused(llama, tensors, c -> c.putObject("rope_scaling").put("type", "linear").put("factor", -2.0),
        "Invalid model config config.json: rope_scaling.factor must be a positive number, found -2.0");
    assertRefused(llama, tensors, c -> c.put("rope_theta", 0),
        "Invalid model config config.json: rope_theta must be a positive number, found 0");
    assertRefused(llama, tensors, c -> c.put("rope_theta", -10000.0),
        "Invalid model config config.json: rope_theta must be a positive number, found -10000.0");
    assertRefused(llama, tensors, c -> c.put("max_position_embeddings", 0),
        "Invalid model config config.json: max_position_embeddings must be a positive integer, found 0");
    assertRefused(llama, tensors, c -> c.put("max_position_embeddings", -5),
        "Invalid model config config.json: max_position_embeddings must be a positive integer, found -5");
    assertThat(layoutWith(llama, tensors, c -> c.putObject("rope_scaling").put("rope_type", "linear").put("factor", 2.0)).blocks()).hasSize(2);
  }

  @Test
  void aBlockCountOtherThanTheArchivesIsRefusedBeforeAnythingPerBlockIsBuilt() throws IOException {
    ObjectNode llama = SyntheticArchive.llamaConfig(32, 2, 4, 2, 48, 64);
    Map<String, TensorInfo> tensors = archive("llama", llama);
    assertRefused(llama, tensors, c -> c.put("num_hidden_layers", 1),
        "Invalid model config config.json: num_hidden_layers is 1 but archive archive holds 2 blocks (model.layers.0 to model.layers.1); set num_hidden_layers to 2");
    assertRefused(llama, tensors, c -> c.put("num_hidden_layers", 3),
        "Invalid model config config.json: num_hidden_layers is 3 but archive archive holds 2 blocks (model.layers.0 to model.layers.1); set num_hidden_layers to 2");
    // Would allocate a billion blocks' descriptors if the blueprint were built first.
    assertRefused(llama, tensors, c -> c.put("num_hidden_layers", 1_000_000_000),
        "Invalid model config config.json: num_hidden_layers is 1000000000 but archive archive holds 2 blocks (model.layers.0 to model.layers.1); set num_hidden_layers to 2");
    ObjectNode gpt2 = SyntheticArchive.gpt2Config(32, 2, 4, 64, 32);
    assertRefused(gpt2, archive("gpt2", gpt2), c -> c.put("n_layer", 1_000_000_000),
        "Invalid model config config.json: n_layer is 1000000000 but archive archive holds 2 blocks (transformer.h.0 to transformer.h.1); set n_layer to 2");
  }

  /**
   * transformers raises a KeyError for a llama3 rope_scaling without its low/high frequency factors
   * (checked against transformers 5.18: "Missing required keys in `rope_parameters` for
   * 'rope_type'='llama3'"), and for linear without a factor; sparkprune invented defaults (1, 4,
   * 8192). original_max_position_embeddings may be left out: transformers then uses
   * max_position_embeddings.
   */
  @Test
  void aRopeScalingWithoutTheFactorsItsTypeRequiresIsRefused() throws IOException {
    ObjectNode llama = SyntheticArchive.llamaConfig(32, 2, 4, 2, 48, 64);
    Map<String, TensorInfo> tensors = archive("llama", llama);
    assertRefused(llama, tensors, c -> c.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0),
        "Invalid model config config.json: rope_scaling of type 'llama3' needs high_freq_factor, a positive number, found null;"
            + " its keys are [factor, high_freq_factor, low_freq_factor]");
    assertRefused(llama, tensors, c -> c.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0).put("high_freq_factor", 4.0),
        "Invalid model config config.json: rope_scaling of type 'llama3' needs low_freq_factor, a positive number, found null;"
            + " its keys are [factor, high_freq_factor, low_freq_factor]");
    assertRefused(llama, tensors, c -> c.putObject("rope_scaling").put("type", "linear"),
        "Invalid model config config.json: rope_scaling of type 'linear' needs factor, a positive number, found null; its keys are [factor]");
    assertThat(layoutWith(llama, tensors, c -> c.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0)
        .put("low_freq_factor", 1.0).put("high_freq_factor", 4.0)).blocks()).hasSize(2);
  }

  /** A negative epsilon turns a norm's square root of a small variance into NaN, later blamed on an activation. */
  @Test
  void aNegativeNormEpsilonIsRefused() throws IOException {
    ObjectNode llama = SyntheticArchive.llamaConfig(32, 2, 4, 2, 48, 64);
    Map<String, TensorInfo> tensors = archive("llama", llama);
    assertRefused(llama, tensors, c -> c.put("rms_norm_eps", -1e-5),
        "Invalid model config config.json: rms_norm_eps must be a non-negative number, found -1.0E-5");
    ObjectNode gpt2 = SyntheticArchive.gpt2Config(32, 2, 4, 64, 32);
    assertRefused(gpt2, archive("gpt2", gpt2), c -> c.put("layer_norm_epsilon", "tiny"),
        "Invalid model config config.json: layer_norm_epsilon must be a non-negative number, found \"tiny\"");
  }

  /** An archive without any block is not a num_hidden_layers to set to 0: it is not this architecture's. */
  @Test
  void anArchiveWithoutBlocksIsNotToldToSetZeroBlocks() throws IOException {
    ObjectNode llama = SyntheticArchive.llamaConfig(32, 2, 4, 2, 48, 64);
    Map<String, TensorInfo> tensors = new java.util.LinkedHashMap<>(archive("llama", llama));
    tensors.keySet().removeIf(name -> name.startsWith("model.layers."));
    assertRefused(llama, tensors, c -> { },
        "Invalid model archive archive: it holds no decoder blocks (no tensors named model.layers.N.*) although num_hidden_layers in"
            + " config.json is 2; is it a llama model?");
  }

  /** mlp_only_layers is a list of layer indices: transformers raises on "all", and ignores 99 of 4 layers where sparkprune refuses it. */
  @Test
  void mlpOnlyLayersMustBeLayerIndices() throws IOException {
    Path fixture = dev.sparkprune.tensorio.ModelFixtures.path("qwen2_moe");
    ModelArchive archive = ModelArchive.open(IO, fixture.toString());
    ObjectNode config = (ObjectNode) archive.config().json().deepCopy();
    Map<String, TensorInfo> tensors = archive.tensorInfos();
    int layers = config.get("num_hidden_layers").asInt();
    assertRefused(config, tensors, c -> c.put("mlp_only_layers", "all"),
        "Invalid model config config.json: mlp_only_layers must be a list of layer indices, found \"all\"");
    assertRefused(config, tensors, c -> c.putArray("mlp_only_layers").add(99),
        "Invalid model config config.json: mlp_only_layers holds 99, not a layer index from 0 to " + (layers - 1) + " (num_hidden_layers "
            + layers + ")");
    assertRefused(config, tensors, c -> c.putArray("mlp_only_layers").add(-1),
        "Invalid model config config.json: mlp_only_layers holds -1, not a layer index from 0 to " + (layers - 1) + " (num_hidden_layers "
            + layers + ")");
  }
}
