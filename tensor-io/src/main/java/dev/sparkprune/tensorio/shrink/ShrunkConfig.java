package dev.sparkprune.tensorio.shrink;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The config.json of a shrunk model: the source config with the new block count and widths, and
 * every per-layer setting renumbered so each kept block keeps its own (layer_types, sliding
 * windows, mlp_only_layers, max_window_layers, decoder_sparse_step, first_k_dense_replace); the
 * expert count under the family's key with top-k at most that; num_nextn_predict_layers 0, the
 * multi-token-prediction layers being dropped. n_group and topk_group stay: the plan keeps the
 * same number of experts in every group.
 */
final class ShrunkConfig {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ShrunkConfig() {}

  static String rewrite(ModelConfig config, ShrinkPlan plan) {
    ObjectNode root = config.json().deepCopy();
    ModelShape source = plan.source();
    List<Integer> kept = new ArrayList<>();
    plan.blocks().forEach(block -> kept.add(block.source()));
    root.put("num_hidden_layers", kept.size());
    filterPerLayerLists(root, source.blocks(), kept);
    if (root.has("max_window_layers") && root.get("max_window_layers").canConvertToInt()) {
      // Qwen2: blocks below max_window_layers use full attention; keep each block's kind.
      int limit = root.get("max_window_layers").intValue();
      root.put("max_window_layers", (int) kept.stream().filter(b -> b < limit).count());
    }
    source.moe().ifPresent(moe -> {
      // Dense blocks by explicit index, so dropping blocks cannot move the sparse pattern.
      if (root.has("mlp_only_layers") || root.has("decoder_sparse_step")) {
        ArrayNode dense = root.putArray("mlp_only_layers");
        for (int i = 0; i < kept.size(); i++) {
          if (!moe.isSparse(kept.get(i))) {
            dense.add(i);
          }
        }
        if (root.has("decoder_sparse_step")) {
          root.put("decoder_sparse_step", 1);
        }
      }
      if (moe.firstSparseBlock() > 0) {
        // Dense blocks are a prefix of the source, so the kept ones are a prefix of the kept blocks.
        root.put("first_k_dense_replace", (int) kept.stream().filter(b -> b < moe.firstSparseBlock()).count());
      }
      root.put(expertKey(source.modelType()), plan.experts());
      int topK = Math.min(moe.topK(), plan.experts());
      root.put("num_experts_per_tok", topK);
      if (root.has("experts_per_token")) {
        root.put("experts_per_token", topK);
      }
    });
    if (source.mtpBlocks() > 0) {
      root.put("num_nextn_predict_layers", 0);
    }
    if (source.hasDenseMlp()) {
      root.put("intermediate_size", plan.intermediate());
    }
    if (source.headsRemovable()) {
      root.put("num_attention_heads", plan.heads());
      root.put("num_key_value_heads", plan.kvHeads());
      // Explicit, since hidden_size / num_attention_heads no longer gives it. (Never for latent
      // attention: DeepseekV3Config sets head_dim to qk_rope_head_dim, a key would override it.)
      root.put("head_dim", source.headDim());
    }
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The config key of the routed expert count. */
  private static String expertKey(String modelType) {
    switch (modelType) {
      case "mixtral":
      case "gpt_oss":
        return "num_local_experts";
      case "deepseek_v3":
      case "kimi_k2":
      case "glm4_moe":
        return "n_routed_experts";
      default:
        return "num_experts";
    }
  }

  /**
   * Top-level arrays with one entry per block (layer_types, per-layer sliding windows or rope
   * flags): only the kept blocks' entries, in order. Arrays of another length are left alone.
   */
  private static void filterPerLayerLists(ObjectNode root, int blocks, List<Integer> kept) {
    List<String> keys = new ArrayList<>();
    for (Map.Entry<String, JsonNode> entry : root.properties()) {
      if (entry.getValue().isArray() && entry.getValue().size() == blocks && isPerLayerKey(entry.getKey())) {
        keys.add(entry.getKey());
      }
    }
    for (String key : keys) {
      JsonNode values = root.get(key);
      ArrayNode filtered = root.putArray(key);
      kept.forEach(block -> filtered.add(values.get(block)));
    }
  }

  /** Per-layer lists by name: token ids, architectures and the like never are. */
  private static boolean isPerLayerKey(String key) {
    return key.contains("layer") && !key.equals("mlp_only_layers") || key.endsWith("_types") || key.contains("pattern")
        || key.contains("window");
  }
}
