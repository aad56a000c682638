package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.prune.PruneKeys;
import java.util.List;

/**
 * Every setting of {@code sparkprune shrink}, with its default and one-line help; the CLI's
 * options and help are generated from {@link #ALL}. Inputs, calibration and --then-prune's
 * target reuse the prune job's keys.
 */
public final class ShrinkKeys {
  public static final OptionKey MODEL = required("model", "URI", "Model archive to shrink (local path or Hadoop URI).");
  public static final OptionKey OUT = required("out", "URI", "Output folder: model/ (the smaller archive), report.json.");
  public static final OptionKey CALIB = required("calib", "URI", "Calibration text, or pre-tokenized input_ids rows (JSONL, Parquet).");

  /** Blocks to drop; exclusive with {@link #DROP_LAYERS_FRACTION}. */
  public static final OptionKey DROP_LAYERS = value("drop-layers", "N", "0", "Decoder blocks to remove (never the last).");

  /** A fraction of the blocks to drop, rounded, at least one. */
  public static final OptionKey DROP_LAYERS_FRACTION = value("drop-layers-fraction", "F", "", "Fraction of the blocks to remove.");

  public static final String LAYER_METRIC_DEFAULT = "angular";

  /** How blocks to drop are chosen. */
  public static final OptionKey LAYER_METRIC = value(
      "layer-metric", "M", LAYER_METRIC_DEFAULT,
      "angular (the contiguous run of least input-to-input angular distance) or block-influence (ShortGPT).");

  /** Fraction of each dense block's MLP channels kept (rounded to a multiple of 8). */
  public static final OptionKey MLP_KEEP = value("mlp-keep", "F", "1", "Fraction of MLP intermediate channels kept per block.");

  /** Fraction of KV groups kept (whole groups under GQA). */
  public static final OptionKey HEADS_KEEP = value("heads-keep", "F", "1", "Fraction of attention heads kept, in whole KV groups.");

  public static final String WIDTH_METRIC_DEFAULT = "activation";

  /** How channels and KV groups are scored. */
  public static final OptionKey WIDTH_METRIC = value(
      "width-metric", "M", WIDTH_METRIC_DEFAULT, "activation (||X_j|| x ||W[:, j]||) or weight-norm (no activations).");

  /** Fraction of routed experts kept per sparse block. */
  public static final OptionKey EXPERTS_KEEP = value("experts-keep", "F", "1", "Fraction of routed experts kept per MoE block.");

  public static final String EXPERT_METRIC_DEFAULT = "reap";

  /** How experts are scored. */
  public static final OptionKey EXPERT_METRIC = value("expert-metric", "M", EXPERT_METRIC_DEFAULT, "reap or frequency.");

  /** Unstructured or N:M pruning of the shrunk model in the same run. */
  public static final OptionKey THEN_PRUNE = value("then-prune", "M", "", "Then prune the shrunk model: wanda or sparsegpt.");

  /** Everything the command takes, in help order. */
  public static final List<OptionKey> ALL = List.of(
      MODEL, OUT, CALIB, PruneKeys.NSAMPLES, PruneKeys.SEQLEN, PruneKeys.SEED, DROP_LAYERS, DROP_LAYERS_FRACTION, LAYER_METRIC, MLP_KEEP,
      HEADS_KEEP, WIDTH_METRIC, EXPERTS_KEEP, EXPERT_METRIC, THEN_PRUNE, PruneKeys.SPARSITY, PruneKeys.PATTERN, PruneKeys.PARTITIONS,
      PruneKeys.OVERWRITE);

  private ShrinkKeys() {}

  private static OptionKey required(String name, String label, String description) {
    return new OptionKey(name, label, "", description, OptionKey.Kind.REQUIRED, false);
  }

  private static OptionKey value(String name, String label, String defaultText, String description) {
    return new OptionKey(name, label, defaultText, description, OptionKey.Kind.VALUE, false);
  }
}
