package dev.sparkprune.tensorio.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** quantization_config as the releases write it, and every variant sparkprune refuses, with its line. */
class TestQuantization {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String WHERE = "m/config.json";

  private static Quantization parse(String quantizationConfig) throws IOException {
    JsonNode root = JSON.readTree("{\"model_type\": \"x\", \"quantization_config\": " + quantizationConfig + "}");
    return Quantization.parse(root, WHERE);
  }

  private static void assertRefused(String quantizationConfig, String message) {
    assertThatThrownBy(() -> parse(quantizationConfig)).isInstanceOf(ValidationException.class).hasMessage(message);
  }

  @Test
  void readsTheReleaseConfigs() throws IOException {
    assertThat(Quantization.parse(JSON.readTree("{}"), WHERE).method()).isEqualTo(Quantization.Method.NONE);
    assertThat(parse("null").isQuantized()).isFalse();
    Quantization deepseek = parse(
        "{\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", \"quant_method\": \"fp8\", \"weight_block_size\": [128, 128]}");
    assertThat(deepseek.method()).isEqualTo(Quantization.Method.FP8);
    assertThat(deepseek.scaleFormat()).isEqualTo(Quantization.ScaleFormat.FLOAT);
    Quantization v31 = parse("{\"quant_method\": \"fp8\", \"weight_block_size\": [128, 128], \"scale_fmt\": \"ue8m0\"}");
    assertThat(v31.scaleFormat()).isEqualTo(Quantization.ScaleFormat.UE8M0);
    Quantization gptOss = parse("{\"modules_to_not_convert\": [\"model.layers.*.self_attn\", \"model.layers.*.mlp.router\", "
        + "\"model.embed_tokens\", \"lm_head\"], \"quant_method\": \"mxfp4\"}");
    assertThat(gptOss.method()).isEqualTo(Quantization.Method.MXFP4);
    assertThat(gptOss.notConverted()).hasSize(4);
  }

  @Test
  void notConvertedModulesMatchAsTransformersMatchesThem() throws IOException {
    Quantization gptOss = parse("{\"modules_to_not_convert\": [\"model.layers.*.self_attn\", \"model.layers.*.mlp.router\", "
        + "\"model.embed_tokens\", \"lm_head\"], \"ignored_layers\": [\"model.layers.3.mlp.experts\"], \"quant_method\": \"mxfp4\"}");
    assertThat(gptOss.isNotConverted("model.layers.17.self_attn")).isTrue();
    assertThat(gptOss.isNotConverted("model.layers.17.self_attn.q_proj")).isTrue();
    assertThat(gptOss.isNotConverted("model.layers.2.mlp.router")).isTrue();
    assertThat(gptOss.isNotConverted("lm_head")).isTrue();
    assertThat(gptOss.isNotConverted("model.layers.3.mlp.experts")).isTrue();
    assertThat(gptOss.isNotConverted("model.layers.2.mlp.experts")).isFalse();
    assertThat(gptOss.isNotConverted("model.layers.1.mlp.experts")).isFalse();
    assertThat(Quantization.moduleOf("model.layers.1.mlp.experts.gate_up_proj")).isEqualTo("model.layers.1.mlp.experts");
  }

  @Test
  void refusesWhatItCannotReadOrWrite() {
    assertRefused("{\"quant_method\": \"gptq\", \"bits\": 4}",
        "Unsupported quantization_config.quant_method 'gptq' in m/config.json: sparkprune reads fp8 (F8_E4M3 weights with 128x128 "
            + "block scales, as DeepSeek-V3, Kimi-K2, GLM-4.5-FP8 and Qwen3-FP8 ship) and mxfp4 (gpt-oss); dequantize the model to BF16 first");
    assertRefused("{\"bits\": 4}", "Invalid quantization_config in m/config.json: no quant_method");
    assertRefused("[1]", "Invalid quantization_config in m/config.json: expected a JSON object, found [1]");
    assertRefused("{\"quant_method\": \"fp8\", \"weight_block_size\": [64, 64]}",
        "Unsupported quantization_config.weight_block_size [64,64] in m/config.json: sparkprune reads [128, 128] blocks only "
            + "(every FP8 block-scaled release uses them)");
    assertRefused("{\"quant_method\": \"fp8\", \"weight_block_size\": [128, 64]}",
        "Unsupported quantization_config.weight_block_size [128,64] in m/config.json: sparkprune reads [128, 128] blocks only "
            + "(every FP8 block-scaled release uses them)");
    assertRefused("{\"quant_method\": \"fp8\"}",
        "Unsupported quantization_config in m/config.json: fp8 without weight_block_size (per-tensor scales); sparkprune reads "
            + "128x128 block scales only");
    assertRefused("{\"quant_method\": \"fp8\", \"fmt\": \"e5m2\", \"weight_block_size\": [128, 128]}",
        "Unsupported quantization_config.fmt \"e5m2\" in m/config.json: fp8 archives are read as F8_E4M3 (fmt e4m3) only");
    assertRefused("{\"quant_method\": \"fp8\", \"activation_scheme\": \"static\", \"weight_block_size\": [128, 128]}",
        "Unsupported quantization_config.activation_scheme \"static\" in m/config.json: only dynamic activation scaling is supported "
            + "(static scales would not follow the pruned weights)");
    assertRefused("{\"quant_method\": \"fp8\", \"scale_fmt\": \"e4m3\", \"weight_block_size\": [128, 128]}",
        "Unsupported quantization_config.scale_fmt \"e4m3\" in m/config.json: sparkprune writes float scales (no scale_fmt) or ue8m0 "
            + "power-of-two scales");
    assertRefused("{\"quant_method\": \"mxfp4\", \"modules_to_not_convert\": \"lm_head\"}",
        "Invalid quantization_config.modules_to_not_convert in m/config.json: expected a list of module names, found \"lm_head\"");
    assertRefused("{\"quant_method\": \"mxfp4\", \"ignored_layers\": [\"model.layers.(\"]}",
        "Invalid quantization_config.ignored_layers entry 'model.layers.(' in m/config.json: not a valid pattern (Unclosed group)");
  }

  @Test
  void listingModulesAsNotConvertedKeepsTheRestOfTheConfig() throws IOException {
    String config = "{\"model_type\": \"gpt_oss\", \"quantization_config\": {\"modules_to_not_convert\": [\"lm_head\"], "
        + "\"ignored_layers\": [], \"quant_method\": \"mxfp4\"}}";
    String rewritten = Quantization.withNotConverted(config, List.of("model.layers.5.mlp.experts", "lm_head"));
    JsonNode root = JSON.readTree(rewritten);
    assertThat(root.get("model_type").asText()).isEqualTo("gpt_oss");
    assertThat(root.get("quantization_config").get("modules_to_not_convert").toString())
        .isEqualTo("[\"lm_head\",\"model.layers.5.mlp.experts\"]");
    assertThat(root.get("quantization_config").get("ignored_layers").toString())
        .isEqualTo("[\"model.layers.5.mlp.experts\",\"lm_head\"]");
    Quantization parsed = Quantization.parse(root, WHERE);
    assertThat(parsed.isNotConverted("model.layers.5.mlp.experts")).isTrue();
    assertThatThrownBy(() -> Quantization.withNotConverted("{\"model_type\": \"x\"}", List.of("a")))
        .hasMessage("Cannot list modules as not converted: the config has no quantization_config");
  }
}
