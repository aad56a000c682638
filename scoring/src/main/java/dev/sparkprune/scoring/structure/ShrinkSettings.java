package dev.sparkprune.scoring.structure;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.shrink.ModelShape;
import java.io.Serializable;
import java.util.Locale;
import java.util.Objects;

/**
 * What to remove, resolved and checked against the model: blocks to drop and how to choose them,
 * the fractions of MLP channels, KV groups and experts to keep and how to score them. A fraction
 * of 1 keeps everything of that structure.
 */
public record ShrinkSettings(
    int dropBlocks, LayerMetric layerMetric, double mlpKeep, double headsKeep, WidthMetric widthMetric, double expertsKeep,
    ExpertSaliency.Metric expertMetric) implements Serializable {
  /** How blocks to drop are chosen. */
  public enum LayerMetric {
    ANGULAR,
    BLOCK_INFLUENCE,
    /** First-order loss change of removing a block, from the dense model's gradients: needs a gradient pass. */
    TAYLOR;

    public static LayerMetric parse(String text) {
      switch (text.toLowerCase(Locale.ROOT)) {
        case "angular":
          return ANGULAR;
        case "block-influence":
          return BLOCK_INFLUENCE;
        case "taylor":
          return TAYLOR;
        default:
          throw ValidationException.invalid("layer metric", text, "use angular, block-influence or taylor");
      }
    }
  }

  /** How MLP channels and KV groups are scored. */
  public enum WidthMetric {
    ACTIVATION,
    WEIGHT_NORM,
    /** FLAP's fluctuation: the variance of a channel's input times its column's squared norm. */
    FLAP,
    /** First-order Taylor importance |W . dL/dW| summed over the structure ({@link TaylorScores}): needs gradients. */
    TAYLOR;

    public static WidthMetric parse(String text) {
      switch (text.toLowerCase(Locale.ROOT)) {
        case "activation":
          return ACTIVATION;
        case "weight-norm":
          return WEIGHT_NORM;
        case "flap":
          return FLAP;
        case "taylor":
          return TAYLOR;
        default:
          throw ValidationException.invalid("width metric", text, "use activation, weight-norm, flap or taylor");
      }
    }
  }

  /** Model types whose attention llama.cpp builds as hidden x hidden matrices. */
  static final java.util.Set<String> FIXED_ATTENTION_WIDTH = java.util.Set.of("qwen2", "qwen2_moe");

  public ShrinkSettings {
    Objects.requireNonNull(layerMetric, "layerMetric is null");
    Objects.requireNonNull(widthMetric, "widthMetric is null");
    Objects.requireNonNull(expertMetric, "expertMetric is null");
    if (dropBlocks < 0) {
      throw ValidationException.invalid("number of blocks to drop", dropBlocks, "must be 0 or more");
    }
    KeepCounts.checkFraction("MLP keep fraction", mlpKeep);
    KeepCounts.checkFraction("heads keep fraction", headsKeep);
    KeepCounts.checkFraction("experts keep fraction", expertsKeep);
  }

  public static ExpertSaliency.Metric parseExpertMetric(String text) {
    switch (text.toLowerCase(Locale.ROOT)) {
      case "reap":
        return ExpertSaliency.Metric.REAP;
      case "frequency":
        return ExpertSaliency.Metric.FREQUENCY;
      default:
        throw ValidationException.invalid("expert metric", text, "use reap or frequency");
    }
  }

  /** Whether anything is removed at all. */
  public boolean removesSomething() {
    return dropBlocks > 0 || mlpKeep < 1 || headsKeep < 1 || expertsKeep < 1;
  }

  /** Checks the request against the model before any work: one-line errors naming the structure. */
  public void checkAgainst(ModelShape shape) {
    ValidationException.check(
        removesSomething(), "Cannot shrink: nothing to remove; drop blocks, or keep fewer MLP channels, heads or experts");
    ValidationException.check(
        dropBlocks < shape.blocks(),
        "Cannot drop %d of %d blocks: that removes every block; the last block is always kept, so drop at most %d",
        dropBlocks, shape.blocks(), shape.blocks() - 1);
    ValidationException.check(
        expertsKeep == 1 || shape.experts() > 0,
        "Cannot remove experts of %s: model_type %s has no experts", shape.modelType(), shape.modelType());
    // llama.cpp builds qwen2 and qwen2moe attention as hidden x hidden matrices: fewer heads would not load there.
    ValidationException.check(
        headsKeep == 1 || !FIXED_ATTENTION_WIDTH.contains(shape.modelType()),
        "Cannot remove attention heads of %s: llama.cpp requires num_attention_heads x head_dim = hidden_size for model_type %s,"
            + " so the shrunk archive would not load there; shrink the MLP, depth or experts instead",
        shape.modelType(), shape.modelType());
    ValidationException.check(
        headsKeep == 1 || shape.headsRemovable(),
        "Cannot remove attention heads of %s: its multi-head latent attention projects every head's keys and values from one latent;"
            + " shrink depth, dense MLP width or experts instead",
        shape.modelType());
    // gpt-oss runtimes put the sliding window on even layers: only pairs of blocks keep that true.
    ValidationException.check(
        dropBlocks % 2 == 0 || !shape.modelType().equals("gpt_oss"),
        "Cannot drop %d blocks of gpt_oss: its sliding-window and full-attention layers must keep alternating;"
            + " drop an even number",
        dropBlocks);
    ValidationException.check(
        mlpKeep == 1 || shape.hasDenseMlp(),
        "Cannot remove MLP channels of %s: it has no dense MLP blocks (remove whole experts instead)", shape.modelType());
  }

  /** Whether the decision needs Taylor scores of the width structures or of the blocks, and so a gradient pass. */
  public boolean needsGradients() {
    return widthMetric == WidthMetric.TAYLOR && (mlpKeep < 1 || headsKeep < 1) || layerMetric == LayerMetric.TAYLOR && dropBlocks > 0;
  }

  /** The span of contiguous runs the depth scores need. */
  public int maxSpan() {
    return dropBlocks;
  }
}
