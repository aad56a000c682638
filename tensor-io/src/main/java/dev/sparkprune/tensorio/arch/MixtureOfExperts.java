package dev.sparkprune.tensorio.arch;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.io.Serializable;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;

/**
 * The mixture-of-experts MLP of a model as config.json describes it: tensor names within a
 * block, expert count, top-k, how the router scores and weights experts, the shared expert, and
 * which layers are sparse. One place for the names, read by the blueprint, the forward pass and
 * shrinking. Families: Mixtral, Qwen2-MoE, Qwen3-MoE ({@link Scoring#SOFTMAX}); DeepSeek-V3,
 * Kimi-K2, GLM-4.5 ({@link Scoring#SIGMOID_GROUP_LIMITED}); gpt-oss ({@link Scoring#TOP_K_SOFTMAX},
 * fused expert tensors).
 */
public final class MixtureOfExperts implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final String[] LLAMA_PROJECTIONS = {"gate_proj", "up_proj", "down_proj"};

  /** How a router turns one token's logits into its k experts and their weights. */
  public enum Scoring {
    /** Softmax over every expert, the k largest probabilities, divided by their sum with norm_topk_prob. */
    SOFTMAX,
    /**
     * sigmoid(logits); experts chosen by sigmoid + e_score_correction_bias, only within the
     * topk_group groups (of n_group contiguous groups) whose two best such scores sum highest;
     * weights are the chosen sigmoids, divided by their sum with norm_topk_prob, times
     * routed_scaling_factor.
     */
    SIGMOID_GROUP_LIMITED,
    /** The k largest logits of a router with a bias, then a softmax over those k only. */
    TOP_K_SOFTMAX
  }

  private final Scoring scoring;
  private final String moduleName;
  private final String routerName;
  private final String[] projections;
  private final String sharedName;
  private final boolean sharedGate;
  private final boolean fused;
  private final int experts;
  private final int topK;
  private final boolean normalizeTopK;
  private final int groups;
  private final int topKGroups;
  private final double scalingFactor;
  private final int expertIntermediate;
  private final int sharedIntermediate;
  private final int sparseStep;
  private final int firstSparse;
  private final Set<Integer> denseLayers;

  private MixtureOfExperts(Builder builder) {
    this.scoring = builder.scoring;
    this.moduleName = builder.moduleName;
    this.routerName = builder.routerName;
    this.projections = builder.projections.clone();
    this.sharedName = builder.sharedName;
    this.sharedGate = builder.sharedGate;
    this.fused = builder.fused;
    this.experts = builder.experts;
    this.topK = builder.topK;
    this.normalizeTopK = builder.normalizeTopK;
    this.groups = builder.groups;
    this.topKGroups = builder.topKGroups;
    this.scalingFactor = builder.scalingFactor;
    this.expertIntermediate = builder.expertIntermediate;
    this.sharedIntermediate = builder.sharedIntermediate;
    this.sparseStep = builder.sparseStep;
    this.firstSparse = builder.firstSparse;
    this.denseLayers = Set.copyOf(builder.denseLayers);
  }

  /** The MoE settings of an MoE model type's config; empty for dense model types. */
  public static Optional<MixtureOfExperts> of(ModelConfig config) {
    String type = config.modelType();
    switch (type) {
      case "mixtral": {
        // Mixtral always renormalises the top-k weights and has no dense layers.
        Builder moe = new Builder(Scoring.SOFTMAX, "block_sparse_moe", "gate", new String[] {"w1", "w3", "w2"});
        moe.experts = config.requireInt("num_local_experts");
        moe.topK = config.requireInt("num_experts_per_tok");
        moe.normalizeTopK = true;
        moe.expertIntermediate = config.requireInt("intermediate_size");
        return Optional.of(checked(config, moe));
      }
      case "qwen2_moe":
      case "qwen3_moe": {
        Builder moe = new Builder(Scoring.SOFTMAX, "mlp", "gate", LLAMA_PROJECTIONS);
        moe.denseLayers.addAll(denseLayers(config));
        if (type.equals("qwen2_moe")) {
          moe.sharedName = "shared_expert";
          moe.sharedGate = true;
          moe.sharedIntermediate = config.requireInt("shared_expert_intermediate_size");
        }
        moe.experts = config.requireInt("num_experts");
        moe.topK = config.requireInt("num_experts_per_tok");
        moe.normalizeTopK = config.booleanValue("norm_topk_prob", type.equals("qwen3_moe"));
        moe.expertIntermediate = config.requireInt("moe_intermediate_size");
        moe.sparseStep = config.optionalInt("decoder_sparse_step").orElse(1);
        return Optional.of(checked(config, moe));
      }
      case "deepseek_v3":
      case "kimi_k2":
      case "glm4_moe":
        return Optional.of(checked(config, groupLimited(config, !type.equals("glm4_moe"))));
      case "gpt_oss": {
        Builder moe = new Builder(Scoring.TOP_K_SOFTMAX, "mlp", "router", LLAMA_PROJECTIONS);
        moe.fused = true;
        moe.experts = config.requireInt("num_local_experts");
        moe.topK = config.requireInt("num_experts_per_tok", "experts_per_token");
        moe.expertIntermediate = config.requireInt("intermediate_size");
        return Optional.of(checked(config, moe));
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

  /**
   * DeepSeek-V3 (Kimi-K2, Moonlight) and GLM-4.5: sigmoid group-limited routing and ungated
   * shared experts; absent keys take transformers' defaults (DeepseekV3Config, Glm4MoeConfig).
   */
  private static Builder groupLimited(ModelConfig config, boolean deepseek) {
    Builder moe = new Builder(Scoring.SIGMOID_GROUP_LIMITED, "mlp", "gate", LLAMA_PROJECTIONS);
    moe.experts = config.requireInt("n_routed_experts");
    moe.topK = config.requireInt("num_experts_per_tok");
    moe.normalizeTopK = config.booleanValue("norm_topk_prob", true);
    moe.groups = config.optionalInt("n_group").orElse(deepseek ? 8 : 1);
    moe.topKGroups = config.optionalInt("topk_group").orElse(deepseek ? 4 : 1);
    moe.scalingFactor = config.doubleValue("routed_scaling_factor", deepseek ? 2.5 : 1.0);
    moe.expertIntermediate = config.requireInt("moe_intermediate_size");
    moe.sharedName = "shared_experts";
    moe.sharedIntermediate = moe.expertIntermediate * config.nonNegativeInt("n_shared_experts", 1);
    moe.firstSparse = config.nonNegativeInt("first_k_dense_replace", deepseek ? 3 : 1);
    // transformers computes sigmoid scores and a MoE in every layer from first_k_dense_replace on,
    // whatever these keys say; DeepSeek's own code reads them. Where the two disagree, refuse.
    String scoringFunction = config.stringValue("scoring_func").orElse("sigmoid");
    ValidationException.check(
        scoringFunction.equals("sigmoid"),
        "Cannot run model_type %s: scoring_func '%s' in %s is not implemented; transformers' %s router computes sigmoid scores",
        config.modelType(), scoringFunction, config.location(), config.modelType());
    int frequency = config.optionalInt("moe_layer_freq").orElse(1);
    ValidationException.check(
        frequency == 1,
        "Cannot run model_type %s: moe_layer_freq %d in %s is not implemented; transformers puts a MoE in every layer from"
            + " first_k_dense_replace on (moe_layer_freq 1)",
        config.modelType(), frequency, config.location());
    return moe;
  }

  private static MixtureOfExperts checked(ModelConfig config, Builder moe) {
    String where = config.location();
    ValidationException.check(
        moe.experts > 0, "Invalid model config %s: %s has %d experts; need at least 1", where, config.modelType(), moe.experts);
    ValidationException.check(
        moe.topK >= 1 && moe.topK <= moe.experts,
        "Invalid model config %s: num_experts_per_tok %d must be between 1 and the number of experts %d",
        where, moe.topK, moe.experts);
    ValidationException.check(
        moe.sparseStep >= 1, "Invalid model config %s: decoder_sparse_step %d must be at least 1", where, moe.sparseStep);
    if (moe.scoring == Scoring.SIGMOID_GROUP_LIMITED) {
      ValidationException.check(
          moe.experts % moe.groups == 0,
          "Invalid model config %s: n_group %d does not divide n_routed_experts %d; routing needs equal groups of experts",
          where, moe.groups, moe.experts);
      // A group's score is the sum of its two best experts' scores (transformers' topk(2)).
      ValidationException.check(
          moe.experts / moe.groups >= 2,
          "Invalid model config %s: n_group %d leaves %d expert(s) per group of n_routed_experts %d; group scores need at least 2",
          where, moe.groups, moe.experts / moe.groups, moe.experts);
      ValidationException.check(
          moe.topKGroups <= moe.groups,
          "Invalid model config %s: topk_group %d exceeds n_group %d; routing chooses topk_group of the n_group groups",
          where, moe.topKGroups, moe.groups);
      ValidationException.check(
          moe.scalingFactor > 0 && Double.isFinite(moe.scalingFactor),
          "Invalid model config %s: routed_scaling_factor must be a positive number, found %s",
          where, config.json().get("routed_scaling_factor"));
    }
    return new MixtureOfExperts(moe);
  }

  /**
   * Whether layer {@code block} has the sparse MLP: from first_k_dense_replace on (DeepSeek,
   * GLM), not in mlp_only_layers and (block + 1) % decoder_sparse_step == 0 (Qwen-MoE).
   */
  public boolean isSparse(int block) {
    return block >= firstSparse && !denseLayers.contains(block) && (block + 1) % sparseStep == 0;
  }

  public Scoring scoring() {
    return scoring;
  }

  public int experts() {
    return experts;
  }

  public int topK() {
    return topK;
  }

  /** Whether the top-k routing weights are divided by their sum (Mixtral: always; Qwen, DeepSeek, GLM: norm_topk_prob). */
  public boolean normalizeTopK() {
    return normalizeTopK;
  }

  /** n_group: routing chooses within contiguous groups of experts / groups experts (1 for other scorings). */
  public int groups() {
    return groups;
  }

  /** topk_group: how many groups each token's experts may come from. */
  public int topKGroups() {
    return topKGroups;
  }

  /** routed_scaling_factor: the routing weights' final factor (1 for other scorings). */
  public double scalingFactor() {
    return scalingFactor;
  }

  /** first_k_dense_replace: blocks before it have a dense MLP (0 for other families). */
  public int firstSparseBlock() {
    return firstSparse;
  }

  public int expertIntermediate() {
    return expertIntermediate;
  }

  public boolean hasSharedExpert() {
    return sharedIntermediate > 0;
  }

  /** Whether a sigmoid gate scales the shared expert (Qwen2-MoE); DeepSeek's and GLM's are added as they are. */
  public boolean hasSharedExpertGate() {
    return sharedGate;
  }

  public int sharedIntermediate() {
    return sharedIntermediate;
  }

  /** Whether every routed expert of a block lives in one tensor per projection (gpt-oss). */
  public boolean fused() {
    return fused;
  }

  /** The router's name within a block: {@code block_sparse_moe.gate}, {@code mlp.gate}, {@code mlp.router}. */
  public String router() {
    return moduleName + "." + routerName;
  }

  /** The router's bias within a block (gpt-oss), added to its logits. */
  public Optional<String> routerBias() {
    return scoring == Scoring.TOP_K_SOFTMAX ? Optional.of(router() + ".bias") : Optional.empty();
  }

  /** The correction bias within a block (DeepSeek-V3, GLM-4.5), added to scores only to choose experts. */
  public Optional<String> correctionBias() {
    return scoring == Scoring.SIGMOID_GROUP_LIMITED ? Optional.of(router() + ".e_score_correction_bias") : Optional.empty();
  }

  /**
   * Expert e's gate, up and down projections within a block (Mixtral's w1, w3, w2); for fused
   * experts (gpt-oss) the names of their slices as linears, {@code mlp.experts.e.gate_proj}.
   */
  public String expertLinear(int expert, int projection) {
    return moduleName + ".experts." + expert + "." + projections[projection];
  }

  /**
   * The fused experts' tensors within a block (gpt-oss): {@code gate_up_proj} [experts, hidden,
   * 2 x intermediate] with gate and up in alternate columns, and {@code down_proj} [experts,
   * intermediate, hidden]; each with {@code _bias} [experts, width].
   */
  public String fusedGateUp() {
    return fusedName("gate_up_proj");
  }

  public String fusedDown() {
    return fusedName("down_proj");
  }

  private String fusedName(String projection) {
    if (!fused) {
      throw new IllegalStateException("Experts of " + moduleName + " are separate tensors");
    }
    return moduleName + ".experts." + projection;
  }

  /** The shared expert's gate, up and down projections within a block. */
  public String sharedLinear(int projection) {
    return moduleName + "." + sharedName + "." + projections[projection];
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
    routerBias().ifPresent(bias -> blueprint.tensor(blockPrefix + bias, TensorRole.ROUTER_BIAS, experts));
    correctionBias().ifPresent(bias -> blueprint.tensor(blockPrefix + bias, TensorRole.ROUTER_BIAS, experts));
    if (fused) {
      blueprint.tensor(blockPrefix + fusedGateUp(), TensorRole.EXPERTS, experts, hidden, 2L * expertIntermediate);
      blueprint.tensor(blockPrefix + fusedGateUp() + "_bias", TensorRole.BIAS, experts, 2L * expertIntermediate);
      blueprint.tensor(blockPrefix + fusedDown(), TensorRole.EXPERTS, experts, expertIntermediate, hidden);
      blueprint.tensor(blockPrefix + fusedDown() + "_bias", TensorRole.BIAS, experts, hidden);
      // Each expert's gate, up and down as prunable linears, slices of the fused tensors.
      int width = expertIntermediate;
      for (int e = 0; e < experts; e++) {
        Expert expert = Expert.routed(e);
        String gateUp = blockPrefix + fusedGateUp();
        String down = blockPrefix + fusedDown();
        blueprint.fusedExpertLinear(block, blockPrefix, expertLinear(e, 0), expertInputGroup(e, false), expert,
            new FusedExpertSlice(gateUp, e, FusedExpertSlice.Part.GATE, width, hidden), width, hidden);
        blueprint.fusedExpertLinear(block, blockPrefix, expertLinear(e, 1), expertInputGroup(e, false), expert,
            new FusedExpertSlice(gateUp, e, FusedExpertSlice.Part.UP, width, hidden), width, hidden);
        blueprint.fusedExpertLinear(block, blockPrefix, expertLinear(e, 2), expertInputGroup(e, true), expert,
            new FusedExpertSlice(down, e, FusedExpertSlice.Part.DOWN, hidden, width), hidden, width);
      }
    } else {
      for (int e = 0; e < experts; e++) {
        Expert expert = Expert.routed(e);
        blueprint.expertLinear(block, blockPrefix, expertLinear(e, 0), expertIntermediate, hidden, expertInputGroup(e, false), expert);
        blueprint.expertLinear(block, blockPrefix, expertLinear(e, 1), expertIntermediate, hidden, expertInputGroup(e, false), expert);
        blueprint.expertLinear(block, blockPrefix, expertLinear(e, 2), hidden, expertIntermediate, expertInputGroup(e, true), expert);
      }
    }
    if (hasSharedExpert()) {
      Expert shared = Expert.sharedExpert();
      blueprint.expertLinear(block, blockPrefix, sharedLinear(0), sharedIntermediate, hidden, "shared_expert_input", shared);
      blueprint.expertLinear(block, blockPrefix, sharedLinear(1), sharedIntermediate, hidden, "shared_expert_input", shared);
      blueprint.expertLinear(block, blockPrefix, sharedLinear(2), hidden, sharedIntermediate, "shared_expert_hidden", shared);
      if (sharedGate) {
        blueprint.tensor(blockPrefix + sharedGate() + ".weight", TensorRole.SHARED_EXPERT_GATE, 1, hidden);
      }
    }
  }

  /** The settings of one family, filled in by {@link #of} and checked once. */
  private static final class Builder {
    private final Scoring scoring;
    private final String moduleName;
    private final String routerName;
    private final String[] projections;
    private final Set<Integer> denseLayers = new HashSet<>();
    private String sharedName = "shared_expert";
    private boolean sharedGate;
    private boolean fused;
    private int experts;
    private int topK;
    private boolean normalizeTopK;
    private int groups = 1;
    private int topKGroups = 1;
    private double scalingFactor = 1.0;
    private int expertIntermediate;
    private int sharedIntermediate;
    private int sparseStep = 1;
    private int firstSparse;

    private Builder(Scoring scoring, String moduleName, String routerName, String[] projections) {
      this.scoring = scoring;
      this.moduleName = moduleName;
      this.routerName = routerName;
      this.projections = projections;
    }
  }
}
