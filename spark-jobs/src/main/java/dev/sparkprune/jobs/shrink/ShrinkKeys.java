package dev.sparkprune.jobs.shrink;

import static java.util.Map.entry;

import dev.sparkprune.jobs.options.CommonKeys;
import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.options.Parsers;
import dev.sparkprune.scoring.structure.ExpertSaliency;
import dev.sparkprune.scoring.structure.KeepCounts;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import java.util.List;

/**
 * Every setting of {@code sparkprune shrink}, typed, with its checks, default and one-line help;
 * the CLI's options and help are generated from {@link #ALL} and {@link ShrinkOptionsResolver}
 * reads them. Calibration, --then-prune's target and --overwrite are the {@link CommonKeys}.
 */
public final class ShrinkKeys {
  public static final OptionKey<String> MODEL = OptionKey.builder("model", Parsers.TEXT).label("URI").required()
      .description("Model archive to shrink (local path or Hadoop URI).").build();
  public static final OptionKey<String> OUT = OptionKey.builder("out", Parsers.TEXT).label("URI").required()
      .description("Output folder: model/ (the smaller archive), report.json.").build();
  public static final OptionKey<String> CALIB = OptionKey.builder("calib", Parsers.TEXT).label("URI").required()
      .description("Calibration text, or pre-tokenized input_ids rows (JSONL, Parquet).").build();

  /** Blocks to drop; exclusive with {@link #DROP_LAYERS_FRACTION}. */
  public static final OptionKey<Integer> DROP_LAYERS = OptionKey.builder("drop-layers", Parsers.INTEGER).label("N").defaultValue(0)
      .check(Parsers.atLeast(0, "must be 0 or more")).description("Decoder blocks to remove (never the last).").build();

  /** A fraction of the blocks to drop, rounded, at least one. */
  public static final OptionKey<Double> DROP_LAYERS_FRACTION = OptionKey.builder("drop-layers-fraction", Parsers.NUMBER).label("F")
      .check(fraction -> KeepCounts.checkFraction("fraction of blocks to drop", fraction))
      .description("Fraction of the blocks to remove.").build();

  /** How blocks to drop are chosen. */
  public static final OptionKey<ShrinkSettings.LayerMetric> LAYER_METRIC = OptionKey.builder("layer-metric", ShrinkSettings.LayerMetric::parse)
      .label("M").defaultValue("angular")
      .description("angular (the contiguous run of least input-to-input angular distance), block-influence (ShortGPT) or taylor"
          + " (first-order loss change of removing the block).").build();

  /** Fraction of each dense block's MLP channels kept (rounded to a multiple of 8). */
  public static final OptionKey<Double> MLP_KEEP = OptionKey.builder("mlp-keep", Parsers.NUMBER).label("F").defaultValue("1")
      .check(fraction -> KeepCounts.checkFraction("MLP keep fraction", fraction))
      .description("Fraction of MLP intermediate channels kept per block.").build();

  /** Fraction of KV groups kept (whole groups under GQA). */
  public static final OptionKey<Double> HEADS_KEEP = OptionKey.builder("heads-keep", Parsers.NUMBER).label("F").defaultValue("1")
      .check(fraction -> KeepCounts.checkFraction("heads keep fraction", fraction))
      .description("Fraction of attention heads kept, in whole KV groups.").build();

  /** How channels and KV groups are scored. */
  public static final OptionKey<ShrinkSettings.WidthMetric> WIDTH_METRIC = OptionKey.builder("width-metric", ShrinkSettings.WidthMetric::parse)
      .label("M").defaultValue("activation").description(
          "activation (||X_j|| x ||W[:, j]||), weight-norm (no activations), flap (input variance x ||W[:, j]||^2) or taylor (sum |W x dL/dW|).")
      .build();

  /** Fraction of routed experts kept per sparse block. */
  public static final OptionKey<Double> EXPERTS_KEEP = OptionKey.builder("experts-keep", Parsers.NUMBER).label("F").defaultValue("1")
      .check(fraction -> KeepCounts.checkFraction("experts keep fraction", fraction))
      .description("Fraction of routed experts kept per MoE block.").build();

  /** How experts are scored. */
  public static final OptionKey<ExpertSaliency.Metric> EXPERT_METRIC = OptionKey.builder("expert-metric", ShrinkSettings::parseExpertMetric)
      .label("M").defaultValue("reap").description("reap or frequency.").build();

  /** A size budget: the fraction of all parameters to keep; the search chooses the cut (exclusive with the explicit cuts). */
  public static final OptionKey<Double> TARGET_PARAMS = OptionKey.builder("target-params", Parsers.NUMBER).label("F")
      .check(fraction -> SizeTarget.checkFraction(fraction))
      .description("Keep at most this fraction of the parameters: searches depth, MLP width, KV groups and experts for the cut with"
          + " the lowest held-out calibration loss (repaired as --repair says).").build();

  /** The same for a mixture of experts' active parameters per token. */
  public static final OptionKey<Double> TARGET_ACTIVE_PARAMS = OptionKey.builder("target-active-params", Parsers.NUMBER).label("F")
      .check(fraction -> SizeTarget.checkFraction(fraction))
      .description("As --target-params, counting the parameters a token runs through (routed experts: top-k of each block).").build();

  /** Least-squares repair of what remains (the default: it closed 38-82% of the perplexity gap on every cut measured). */
  public static final OptionKey<Boolean> REPAIR = OptionKey.builder("repair",
          Parsers.oneOf(entry("ls", Boolean.TRUE), entry("none", Boolean.FALSE)))
      .label("M").defaultValue("ls")
      .description("ls (refit o_proj/down_proj of the changed blocks by least squares on the calibration tokens) or none.").build();

  /** Unstructured or N:M pruning of the shrunk model in the same run. */
  public static final OptionKey<String> THEN_PRUNE = OptionKey.builder("then-prune",
          Parsers.oneOf(entry("wanda", "wanda"), entry("sparsegpt", "sparsegpt")))
      .label("M").description("Then prune the shrunk model: wanda or sparsegpt.").build();

  /** Everything the command takes, in help order. */
  /** The keys whose values are locations, qualified on the driver. */
  public static final List<OptionKey<?>> LOCATIONS = List.of(MODEL, OUT, CALIB);

  public static final List<OptionKey<?>> ALL = List.of(
      MODEL, OUT, CALIB, CommonKeys.NSAMPLES, CommonKeys.SEQLEN, CommonKeys.SEED, DROP_LAYERS, DROP_LAYERS_FRACTION, LAYER_METRIC, MLP_KEEP,
      HEADS_KEEP, WIDTH_METRIC, EXPERTS_KEEP, EXPERT_METRIC, TARGET_PARAMS, TARGET_ACTIVE_PARAMS, REPAIR, THEN_PRUNE, CommonKeys.SPARSITY, CommonKeys.PATTERN, CommonKeys.PARTITIONS,
      CommonKeys.EXPERT_TASK_MB, CommonKeys.OVERWRITE);

  private ShrinkKeys() {}
}
