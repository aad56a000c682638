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
 * windows, mlp_only_layers, max_window_layers, decoder_sparse_step).
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
      String expertKey = source.modelType().equals("mixtral") ? "num_local_experts" : "num_experts";
      root.put(expertKey, plan.experts());
      root.put("num_experts_per_tok", Math.min(moe.topK(), plan.experts()));
    });
    if (source.hasDenseMlp()) {
      root.put("intermediate_size", plan.intermediate());
    }
    root.put("num_attention_heads", plan.heads());
    root.put("num_key_value_heads", plan.kvHeads());
    // Explicit, since hidden_size / num_attention_heads no longer gives it.
    root.put("head_dim", source.headDim());
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
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
