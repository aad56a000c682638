package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.options.CommonKeys;
import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.options.OptionValues;
import dev.sparkprune.scoring.structure.KeepCounts;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Turns the values a user gave into {@link ShrinkOptions}, through the one precedence chain of
 * {@link OptionValues} (given, then {@code spark.sparkprune.<key>} for the calibration keys it
 * shares with prune, then the defaults in {@link ShrinkKeys}). --drop-layers-fraction reads the
 * model's block count from its config.json.
 */
public final class ShrinkOptionsResolver {
  private final Map<String, String> conf;
  private final HadoopFileIO io;

  /** @param conf the {@code spark.sparkprune.*} entries of the Spark conf */
  public ShrinkOptionsResolver(Map<String, String> conf, HadoopFileIO io) {
    this.conf = Map.copyOf(Objects.requireNonNull(conf, "conf is null"));
    this.io = Objects.requireNonNull(io, "io is null");
  }

  /** Resolves the given values (key name to text; a flag's text is true or false). */
  public ShrinkOptions resolve(Map<String, String> given) throws IOException {
    OptionValues.checkKnown(given, ShrinkKeys.ALL, "shrink");
    OptionValues values = new OptionValues(given, conf, Map.of());
    String model = values.get(ShrinkKeys.MODEL);
    values.checkExclusive(ShrinkKeys.DROP_LAYERS, ShrinkKeys.DROP_LAYERS_FRACTION);
    int drop = values.get(ShrinkKeys.DROP_LAYERS);
    if (values.isSet(ShrinkKeys.DROP_LAYERS_FRACTION)) {
      int blocks = ModelArchive.open(io, model).config().requireInt("num_hidden_layers");
      drop = KeepCounts.droppedBlocks(blocks, values.get(ShrinkKeys.DROP_LAYERS_FRACTION));
    }
    ShrinkSettings settings = new ShrinkSettings(
        drop, values.get(ShrinkKeys.LAYER_METRIC), values.get(ShrinkKeys.MLP_KEEP), values.get(ShrinkKeys.HEADS_KEEP),
        values.get(ShrinkKeys.WIDTH_METRIC), values.get(ShrinkKeys.EXPERTS_KEEP), values.get(ShrinkKeys.EXPERT_METRIC));
    String thenPrune = values.value(ShrinkKeys.THEN_PRUNE).orElse("");
    SizeTarget budget = budget(values, settings, thenPrune);
    ShrinkOptions options = new ShrinkOptions(
        model, values.get(ShrinkKeys.OUT), values.get(ShrinkKeys.CALIB), values.get(CommonKeys.NSAMPLES), values.get(CommonKeys.SEQLEN),
        values.get(CommonKeys.SEED), settings, thenPrune,
        values.value(CommonKeys.PATTERN).orElseGet(() -> values.get(CommonKeys.SPARSITY)),
        values.value(CommonKeys.PARTITIONS).orElse(0), values.get(CommonKeys.OVERWRITE), values.get(ShrinkKeys.REPAIR),
        values.value(CommonKeys.EXPERT_TASK_MB).map(mb -> (long) mb << 20).orElse(0L), budget);
    // Every value is checked by its key above; the combinations after.
    ValidationException.check(
        !thenPrune.isEmpty() || !values.isSet(CommonKeys.SPARSITY) && !values.isSet(CommonKeys.PATTERN),
        "Cannot use %s or %s without %s wanda|sparsegpt", values.of(CommonKeys.SPARSITY), values.of(CommonKeys.PATTERN),
        values.of(ShrinkKeys.THEN_PRUNE));
    values.checkExclusive(CommonKeys.SPARSITY, CommonKeys.PATTERN);
    ValidationException.check(budget.isSet() || settings.removesSomething(), "Cannot shrink: nothing to remove; give %s, %s, %s, %s or %s",
        values.of(ShrinkKeys.TARGET_PARAMS), values.of(ShrinkKeys.DROP_LAYERS), values.of(ShrinkKeys.MLP_KEEP), values.of(ShrinkKeys.HEADS_KEEP),
        values.of(ShrinkKeys.EXPERTS_KEEP));
    return options;
  }

  /**
   * --target-params or --target-active-params: the search chooses every cut, so neither goes with
   * an explicit one, nor with a Taylor metric (its gradient scores are not part of the search)
   * or --then-prune (whose N:M pattern must fit widths the search has not chosen yet).
   */
  private static SizeTarget budget(OptionValues values, ShrinkSettings settings, String thenPrune) {
    values.checkExclusive(ShrinkKeys.TARGET_PARAMS, ShrinkKeys.TARGET_ACTIVE_PARAMS);
    OptionKey<Double> key = values.isSet(ShrinkKeys.TARGET_ACTIVE_PARAMS) ? ShrinkKeys.TARGET_ACTIVE_PARAMS : ShrinkKeys.TARGET_PARAMS;
    if (!values.isSet(key)) {
      return SizeTarget.NONE;
    }
    for (OptionKey<?> cut : List.of(
        ShrinkKeys.DROP_LAYERS, ShrinkKeys.DROP_LAYERS_FRACTION, ShrinkKeys.MLP_KEEP, ShrinkKeys.HEADS_KEEP, ShrinkKeys.EXPERTS_KEEP)) {
      values.checkExclusive(key, cut);
    }
    ValidationException.check(settings.widthMetric() != ShrinkSettings.WidthMetric.TAYLOR
            && settings.layerMetric() != ShrinkSettings.LayerMetric.TAYLOR,
        "Cannot use %s with a taylor metric: the search scores candidates without gradients; use another %s or %s", values.of(key),
        values.of(ShrinkKeys.WIDTH_METRIC), values.of(ShrinkKeys.LAYER_METRIC));
    ValidationException.check(thenPrune.isEmpty(),
        "Cannot use %s with %s: run shrink, then prune its model/", values.of(key), values.of(ShrinkKeys.THEN_PRUNE));
    return new SizeTarget(key == ShrinkKeys.TARGET_PARAMS ? SizeTarget.Kind.PARAMETERS : SizeTarget.Kind.ACTIVE_PARAMETERS, values.get(key));
  }
}
