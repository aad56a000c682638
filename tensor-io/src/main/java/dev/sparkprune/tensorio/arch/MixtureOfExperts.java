package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.Serializable;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;

/**
 * The mixture-of-experts MLP of Mixtral, Qwen2-MoE and Qwen3-MoE as config.json describes it:
 * tensor names within a block, expert count, top-k, renormalisation, the shared expert, and which
 * layers are sparse. One place for the names, read by the blueprint and by the forward pass.
 */
public final class MixtureOfExperts implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String moduleName;
  private final String[] projections;
  private final int experts;
  private final int topK;
  private final boolean normalizeTopK;
  private final int expertIntermediate;
  private final int sharedIntermediate;
  private final int sparseStep;
  private final Set<Integer> denseLayers;

  private MixtureOfExperts(
      String moduleName, String[] projections, int experts, int topK, boolean normalizeTopK, int expertIntermediate,
      int sharedIntermediate, int sparseStep, Set<Integer> denseLayers) {
    this.moduleName = moduleName;
    this.projections = projections.clone();
    this.experts = experts;
    this.topK = topK;
    this.normalizeTopK = normalizeTopK;
    this.expertIntermediate = expertIntermediate;
    this.sharedIntermediate = sharedIntermediate;
    this.sparseStep = sparseStep;
    this.denseLayers = Set.copyOf(denseLayers);
  }

  /** The MoE settings of a mixtral, qwen2_moe or qwen3_moe config; empty for dense model types. */
  public static Optional<MixtureOfExperts> of(ModelConfig config) {
    String type = config.modelType();
    switch (type) {
      case "mixtral":
        // Mixtral always renormalises the top-k weights and has no dense layers.
        return Optional.of(checked(config, new MixtureOfExperts(
            "block_sparse_moe", new String[] {"w1", "w3", "w2"}, config.requireInt("num_local_experts"),
            config.requireInt("num_experts_per_tok"), true, config.requireInt("intermediate_size"), 0, 1, Set.of())));
      case "qwen2_moe":
      case "qwen3_moe": {
        Set<Integer> dense = denseLayers(config);
        int shared = type.equals("qwen2_moe") ? config.requireInt("shared_expert_intermediate_size") : 0;
        return Optional.of(checked(config, new MixtureOfExperts(
            "mlp", new String[] {"gate_proj", "up_proj", "down_proj"}, config.requireInt("num_experts"),
            config.requireInt("num_experts_per_tok"), config.booleanValue("norm_topk_prob", type.equals("qwen3_moe")),
            config.requireInt("moe_intermediate_size"), shared, config.optionalInt("decoder_sparse_step").orElse(1), dense)));
      }
      default:
        return Optional.empty();
    }
  }

  /**
   * {@code mlp_only_layers}: a list of layer indices, each in [0, num_hidden_layers). transformers
   * raises on "all" and silently ignores an index past the last layer; both are refused here.
   */
  private static Set<Integer> denseLayers(ModelConfig config) {
    Set<Integer> dense = new HashSet<>();
    var mlpOnly = config.json().get("mlp_only_layers");
    if (mlpOnly == null || mlpOnly.isNull()) {
      return dense;
    }
    ValidationException.check(mlpOnly.isArray(), "Invalid model config %s: mlp_only_layers must be a list of layer indices, found %s",
        config.location(), mlpOnly);
    int layers = config.requireInt("num_hidden_layers");
    for (var layer : mlpOnly) {
      ValidationException.check(layer.isIntegralNumber() && layer.canConvertToInt() && layer.intValue() >= 0 && layer.intValue() < layers,
          "Invalid model config %s: mlp_only_layers holds %s, not a layer index from 0 to %d (num_hidden_layers %d)",
          config.location(), layer, layers - 1, layers);
      dense.add(layer.intValue());
    }
    return dense;
  }

  private static MixtureOfExperts checked(ModelConfig config, MixtureOfExperts moe) {
    ValidationException.check(
        moe.experts > 0, "Invalid model config %s: %s has %d experts; need at least 1", config.location(), config.modelType(), moe.experts);
    ValidationException.check(
        moe.topK >= 1 && moe.topK <= moe.experts,
        "Invalid model config %s: num_experts_per_tok %d must be between 1 and the number of experts %d",
        config.location(), moe.topK, moe.experts);
    ValidationException.check(
        moe.sparseStep >= 1, "Invalid model config %s: decoder_sparse_step %d must be at least 1", config.location(), moe.sparseStep);
    return moe;
  }

  /** Whether layer {@code block} has the sparse MLP (Qwen-MoE: not in mlp_only_layers, and (block + 1) % step == 0). */
  public boolean isSparse(int block) {
    return !denseLayers.contains(block) && (block + 1) % sparseStep == 0;
  }

  public int experts() {
    return experts;
  }

  public int topK() {
    return topK;
  }

  /** Whether the top-k routing weights are divided by their sum (Mixtral: always; Qwen: norm_topk_prob). */
  public boolean normalizeTopK() {
    return normalizeTopK;
  }

  public int expertIntermediate() {
    return expertIntermediate;
  }

  public boolean hasSharedExpert() {
    return sharedIntermediate > 0;
  }

  public int sharedIntermediate() {
    return sharedIntermediate;
  }

  /** The router's name within a block: {@code block_sparse_moe.gate}, {@code mlp.gate}. */
  public String router() {
    return moduleName + ".gate";
  }

  /** Expert e's gate, up and down projections within a block (Mixtral's w1, w3, w2). */
  public String expertLinear(int expert, int projection) {
    return moduleName + ".experts." + expert + "." + projections[projection];
  }

  /** The shared expert's gate, up and down projections within a block. */
  public String sharedLinear(int projection) {
    return moduleName + ".shared_expert." + projections[projection];
  }

  public String sharedGate() {
    return moduleName + ".shared_expert_gate";
  }

  /** Routed expert e's input groups: its gate and up read {@code expert.e.input}, its down {@code expert.e.hidden}. */
  public static String expertInputGroup(int expert, boolean hidden) {
    return "expert." + expert + (hidden ? ".hidden" : ".input");
  }

  /** Adds layer {@code block}'s sparse MLP to the blueprint: router, routed experts, shared expert and its gate. */
  void addTo(Blueprint.Builder blueprint, int block, String blockPrefix, int hidden) {
    blueprint.tensor(blockPrefix + router() + ".weight", TensorRole.ROUTER, experts, hidden);
    for (int e = 0; e < experts; e++) {
      Expert expert = Expert.routed(e);
      blueprint.expertLinear(block, blockPrefix, expertLinear(e, 0), expertIntermediate, hidden, expertInputGroup(e, false), expert);
      blueprint.expertLinear(block, blockPrefix, expertLinear(e, 1), expertIntermediate, hidden, expertInputGroup(e, false), expert);
      blueprint.expertLinear(block, blockPrefix, expertLinear(e, 2), hidden, expertIntermediate, expertInputGroup(e, true), expert);
    }
    if (hasSharedExpert()) {
      Expert shared = Expert.sharedExpert();
      blueprint.expertLinear(block, blockPrefix, sharedLinear(0), sharedIntermediate, hidden, "shared_expert_input", shared);
      blueprint.expertLinear(block, blockPrefix, sharedLinear(1), sharedIntermediate, hidden, "shared_expert_input", shared);
      blueprint.expertLinear(block, blockPrefix, sharedLinear(2), hidden, sharedIntermediate, "shared_expert_hidden", shared);
      blueprint.tensor(blockPrefix + sharedGate() + ".weight", TensorRole.SHARED_EXPERT_GATE, 1, hidden);
    }
  }
}
