package dev.sparkprune.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.jobs.plan.MemoryPlan;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Blueprint;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * README's plan table for the five giant models, from their config.json shapes (the values of
 * the Hugging Face releases, written over the fixture of the same family so every other key is
 * one the architecture accepts) and {@link MemoryPlan}'s config-only plan, which a test holds
 * equal to the header plan on the fixtures. Also the compute estimate the README's times come
 * from (see there). Not a test: {@code java -cp ... PlanFigures ../shared/fixtures/models}.
 */
public final class PlanFigures {
  private static final ObjectMapper JSON = new ObjectMapper();
  /** Calibration tokens under the defaults (--nsamples 128, --seqlen 2048). */
  private static final long TOKENS = 128L * 2048;

  private PlanFigures() {}

  public static void main(String[] args) throws Exception {
    Path fixtures = Path.of(args[0]);
    Map<String, ObjectNode> models = new LinkedHashMap<>();
    ObjectNode deepseek = config(fixtures, "deepseek_v3_fp8");
    deepseek.put("hidden_size", 7168).put("intermediate_size", 18432).put("moe_intermediate_size", 2048).put("num_hidden_layers", 61)
        .put("num_nextn_predict_layers", 1).put("num_attention_heads", 128).put("num_key_value_heads", 128).put("n_shared_experts", 1)
        .put("n_routed_experts", 256).put("kv_lora_rank", 512).put("q_lora_rank", 1536).put("qk_rope_head_dim", 64)
        .put("v_head_dim", 128).put("qk_nope_head_dim", 128).put("n_group", 8).put("topk_group", 4).put("num_experts_per_tok", 8)
        .put("first_k_dense_replace", 3).put("vocab_size", 129280).put("max_position_embeddings", 163840);
    ((ObjectNode) deepseek.get("rope_scaling")).put("original_max_position_embeddings", 4096);
    models.put("DeepSeek-V3 (671B, FP8)", deepseek);
    ObjectNode kimi = deepseek.deepCopy();
    kimi.put("n_routed_experts", 384).put("num_attention_heads", 64).put("num_key_value_heads", 64).put("first_k_dense_replace", 1)
        .put("n_group", 1).put("topk_group", 1).put("vocab_size", 163840).put("routed_scaling_factor", 2.827)
        .put("num_nextn_predict_layers", 0).put("max_position_embeddings", 131072);
    models.put("Kimi-K2 (1T, FP8)", kimi);
    ObjectNode glm = config(fixtures, "glm4_moe");
    glm.put("hidden_size", 5120).put("intermediate_size", 12288).put("moe_intermediate_size", 1536).put("num_hidden_layers", 92)
        .put("num_nextn_predict_layers", 1).put("num_attention_heads", 96).put("num_key_value_heads", 8).put("head_dim", 128)
        .put("n_routed_experts", 160).put("n_shared_experts", 1).put("num_experts_per_tok", 8).put("first_k_dense_replace", 3)
        .put("n_group", 1).put("topk_group", 1).put("vocab_size", 151552).put("max_position_embeddings", 131072);
    models.put("GLM-4.5 (355B, BF16)", glm);
    ObjectNode oss = config(fixtures, "gpt_oss_mxfp4");
    oss.put("hidden_size", 2880).put("intermediate_size", 2880).put("num_hidden_layers", 36).put("num_attention_heads", 64)
        .put("num_key_value_heads", 8).put("head_dim", 64).put("num_local_experts", 128).put("num_experts_per_tok", 4)
        .put("experts_per_token", 4).put("vocab_size", 201088).put("sliding_window", 128);
    ArrayNode types = oss.putArray("layer_types");
    for (int b = 0; b < 36; b++) {
      types.add(b % 2 == 0 ? "sliding_attention" : "full_attention");
    }
    models.put("gpt-oss-120b (117B, MXFP4 experts)", oss);
    ObjectNode qwen = config(fixtures, "qwen3_moe");
    qwen.put("hidden_size", 4096).put("intermediate_size", 12288).put("moe_intermediate_size", 1536).put("num_hidden_layers", 94)
        .put("num_attention_heads", 64).put("num_key_value_heads", 4).put("head_dim", 128).put("num_experts", 128)
        .put("num_experts_per_tok", 8).put("vocab_size", 151936).put("max_window_layers", 94).put("max_position_embeddings", 40960);
    models.put("Qwen3-235B-A22B (BF16)", qwen);

    ExecutorShape executor = ExecutorShape.given("64g", 1, 16);
    System.out.println("| model | blocks | largest block stored | as float | calibration task, Wanda / SparseGPT | executor in calibration (1 core), "
        + "Wanda / SparseGPT | SparseGPT statistics per block | scoring tasks per block (64 MiB) | largest scoring task, SparseGPT |"
        + " parameters | calibration forward, TFLOP | SparseGPT solve, TFLOP |");
    System.out.println("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (Map.Entry<String, ObjectNode> model : models.entrySet()) {
      ModelConfig config = ModelConfig.parse(model.getKey(), JSON.writeValueAsString(model.getValue()));
      MemoryPlan.Release release = model.getKey().contains("FP8") ? MemoryPlan.Release.FP8
          : model.getKey().contains("MXFP4") ? MemoryPlan.Release.MXFP4 : MemoryPlan.Release.BF16;
      MemoryPlan wanda = MemoryPlan.of(config, release, new MemoryPlan.Settings(128, 2048, PruningMethod.WANDA, 64L << 20), executor);
      MemoryPlan sparsegpt = MemoryPlan.of(config, release, new MemoryPlan.Settings(128, 2048, PruningMethod.SPARSEGPT, 64L << 20), executor);
      MemoryPlan.BlockPlan w = largest(wanda);
      MemoryPlan.BlockPlan s = largest(sparsegpt);
      Blueprint blueprint = Architectures.canonicalBlueprint(config);
      long parameters = 0;
      for (var tensor : blueprint.tensors()) {
        long count = 1;
        for (long dim : tensor.shape()) {
          count *= dim;
        }
        parameters += count;
      }
      System.out.printf(Locale.ROOT, "| %s | %d | %s | %s | %s / %s | %s / %s | %s | %d | %s | %.0fB | %.0f | %.0f |%n", model.getKey(),
          wanda.blocks().size(), MemoryPlan.gib(w.storedBytes()), MemoryPlan.gib(w.floatBytes()), MemoryPlan.gib(w.calibrationTaskBytes()),
          MemoryPlan.gib(s.calibrationTaskBytes()), MemoryPlan.gib(w.calibrationExecutorBytes()),
          MemoryPlan.gib(s.calibrationExecutorBytes()), MemoryPlan.gib(s.statisticsBytes()), w.scoringTasks(),
          MemoryPlan.gib(s.scoringTaskBytes()), parameters / 1e9, forwardFlops(config, blueprint) / 1e12, solveFlops(blueprint) / 1e12);
    }
  }

  private static ObjectNode config(Path fixtures, String name) throws Exception {
    return (ObjectNode) JSON.readTree(Files.readString(fixtures.resolve(name).resolve("config.json")));
  }

  private static MemoryPlan.BlockPlan largest(MemoryPlan plan) {
    return plan.blocks().stream().max(java.util.Comparator.comparingLong(MemoryPlan.BlockPlan::calibrationExecutorBytes)).orElseThrow();
  }

  /**
   * Multiply-adds of the calibration pass's linears, x2 FLOPs, x2 passes (the dense block for
   * statistics, the pruned block to advance): every token through each non-routed linear and
   * through top-k of the routed experts (their average share). Attention scores are left out.
   */
  private static double forwardFlops(ModelConfig config, Blueprint blueprint) {
    int experts = config.json().path("n_routed_experts").asInt(config.json().path("num_experts").asInt(
        config.json().path("num_local_experts").asInt(1)));
    int topK = config.json().path("num_experts_per_tok").asInt(1);
    double active = 0;
    for (Linear linear : blueprint.linears()) {
      active += linear.isRoutedExpert() ? linear.parameters() * (double) topK / experts : linear.parameters();
    }
    // gpt-oss's fused experts are not linears of the blueprint: top-k of 3 x hidden x intermediate each.
    if (config.modelType().equals("gpt_oss")) {
      long hidden = config.json().get("hidden_size").asLong();
      long intermediate = config.json().get("intermediate_size").asLong();
      active += (double) blueprint.blockCount() * topK * 3 * hidden * intermediate;
    }
    return 2.0 * 2.0 * TOKENS * active;
  }

  /**
   * SparseGPT's per-input-group work: the inverse Hessian (in^3, Cholesky-based) and each linear's
   * column sweep (out x in^2), summed over the model's linears.
   */
  private static double solveFlops(Blueprint blueprint) {
    Map<String, Long> groups = new LinkedHashMap<>();
    double flops = 0;
    for (Linear linear : blueprint.linears()) {
      groups.put(linear.block() + "/" + linear.inputGroup(), linear.inFeatures());
      flops += 2.0 * linear.outFeatures() * linear.inFeatures() * linear.inFeatures();
    }
    for (long in : groups.values()) {
      flops += 2.0 * in * in * in;
    }
    return flops;
  }
}
