package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code inspect} and {@code eval --text} on the DeepSeek-V3, GLM-4.5 and gpt-oss fixtures
 * through the CLI (no Spark): the architecture, experts and MTP layers described from headers,
 * and perplexity computed end to end.
 */
class TestGiantMoeCli {
  private record Result(int code, String out, String err) {}

  private static Result run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  private static String fixture(String arch) {
    return SharedData.path("fixtures/models/" + arch).toString();
  }

  @Test
  void inspectDescribesLatentAttentionGroupLimitedExpertsAndTheMtpLayer() throws IOException {
    Result text = run("inspect", fixture("deepseek_v3"));
    assertThat(text.code()).as(text.err()).isZero();
    assertThat(text.out())
        .contains("Architecture   deepseek_v3 (DeepseekV3ForCausalLM)")
        .contains("Blocks         4")
        .contains("Experts        16 routed per MoE block, top-4 renormalised; sigmoid scores, top-2 of 4 groups (n_group),"
            + " routed_scaling_factor 2.5; MoE blocks [1, 2, 3] (3 of 4); routers 3; shared experts per MoE block (width 96, always on)")
        .contains("MTP layers     1 (multi-token prediction after the blocks: not run, not pruned, copied; shrink drops them)")
        .contains("router_bias 3 (48 parameters)")
        .containsPattern("mtp \\d+ \\(");
    assertThat(text.out().lines().filter(line -> line.matches("^0 +- +self_attn\\.kv_b_proj +256 x 64 +kv_latent .*"))).hasSize(1);
    assertThat(text.out().lines().filter(line -> line.matches("^3 +15 +mlp\\.experts\\.15\\.down_proj +192 x 48 +expert\\.15\\.hidden .*")))
        .hasSize(1);

    JsonNode json = new ObjectMapper().readTree(run("inspect", "--json", fixture("deepseek_v3")).out());
    assertThat(json.get("mtp_layers").asInt()).isEqualTo(1);
    assertThat(json.get("experts").get("scoring").asText()).isEqualTo("sigmoid_group_limited");
    assertThat(json.get("experts").get("groups").asInt()).isEqualTo(4);
    assertThat(json.get("experts").get("top_k_groups").asInt()).isEqualTo(2);
    assertThat(json.get("experts").get("routed_scaling_factor").asDouble()).isEqualTo(2.5);
    assertThat(json.get("not_pruned").findValuesAsText("role")).contains("mtp", "router_bias").doesNotContain("other");
  }

  @Test
  void inspectDescribesGptOssFusedExpertsAndSinks() throws IOException {
    Result text = run("inspect", fixture("gpt_oss"));
    assertThat(text.code()).as(text.err()).isZero();
    assertThat(text.out())
        .contains("Architecture   gpt_oss (GptOssForCausalLM)")
        .contains("Linears        112 prunable (28 per block)")
        .contains("Experts        8 routed per MoE block, top-2; softmax over the top-k logits; fused expert tensors (each expert's gate, up"
            + " and down pruned in place);"
            + " MoE blocks [0, 1, 2, 3] (4 of 4); routers 4")
        .contains("attention_sinks 4 (16 parameters)")
        .contains("experts 8 (");
    JsonNode json = new ObjectMapper().readTree(run("inspect", "--json", fixture("gpt_oss")).out());
    assertThat(json.get("experts").get("fused").asBoolean()).isTrue();
    assertThat(json.get("mtp_layers").asInt()).isZero();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"deepseek_v3", "glm4_moe", "gpt_oss"})
  void evalComputesPerplexityOnText(String arch) {
    Result result = run("eval", "--model", fixture(arch), "--text", SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(),
        "--seqlen", "64", "--max-windows", "2", "--batch", "2");
    assertThat(result.code()).as(result.err()).isZero();
    assertThat(result.out()).contains("(" + arch + ")").contains("evaluated   128 tokens in 2 windows of 64");
    double perplexity = Double.parseDouble(result.out().replaceAll("(?s).*perplexity  ([0-9.]+).*", "$1"));
    // Random weights: the figure means nothing but must be a finite perplexity.
    assertThat(perplexity).isGreaterThan(1.0).isLessThan(1e5);
  }
}
