package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.gradient.GradientNorm;
import dev.sparkprune.jobs.options.OptionKey;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

class TestPruneOptionsResolver {
  private static Map<String, String> base(String... more) {
    Map<String, String> given = new LinkedHashMap<>(Map.of("model", "m", "out", "o", "method", "magnitude"));
    for (int i = 0; i < more.length; i += 2) {
      given.put(more[i], more[i + 1]);
    }
    return given;
  }

  private static PruneOptions resolve(Map<String, String> conf, Map<String, String> given) throws IOException {
    return new PruneOptionsResolver(conf, FixedInputs.NONE).resolve(given);
  }

  private static PruneOptions resolve(String... given) throws IOException {
    return resolve(Map.of(), base(given));
  }

  /** Every default, against the reference implementations' values the README documents. */
  @Test
  void defaults() throws IOException {
    PruneOptions options = resolve();
    assertThat(options.target()).isEqualTo(SparsityTarget.parse("0.5"));
    assertThat(options.calibration()).isEmpty();
    assertThat(options.nsamples()).isEqualTo(128);
    assertThat(options.seqlen()).isEqualTo(2048);
    assertThat(options.seed()).isZero();
    assertThat(options.mode()).isEqualTo(PruneOptions.Mode.SEQUENTIAL);
    assertThat(options.partitions()).isZero();
    assertThat(options.saveStatistics()).isFalse();
    assertThat(options.statistics()).isEmpty();
    assertThat(options.config()).isEmpty();
    assertThat(options.allocation()).isEqualTo(PruneOptions.Allocation.UNIFORM);
    assertThat(options.minKeep()).isEqualTo(0.01);
    assertThat(options.owlLambda()).isEqualTo(0.08);
    assertThat(options.owlM()).isEqualTo(5.0);
    assertThat(options.wandaGroup()).isEqualTo(Wanda.Group.ROW);
    assertThat(options.refinement()).isEqualTo(Refinement.NONE);
    assertThat(options.moeCalibration()).isEqualTo(InputHook.ExpertInputs.ROUTED);
    assertThat(options.minExpertTokens()).isEqualTo(16);
    assertThat(options.scoringTaskBytes()).isEqualTo(64L << 20);
    assertThat(options.gpusPerTask()).isZero();
    assertThat(options.gpusPerExecutor()).isZero();
    assertThat(options.gpuDiscoveryScript()).isEmpty();
    assertThat(options.gpuVendor()).isEmpty();
    assertThat(options.overwrite()).isFalse();
    assertThat(options.gradientNorm()).isEqualTo(GradientNorm.L2);
    assertThat(options.saveGradients()).isFalse();
    assertThat(options.gradients()).isEmpty();
    // --stats alone means one-shot: saved statistics are the dense model's.
    assertThat(resolve("stats", "s").mode()).isEqualTo(PruneOptions.Mode.ONE_SHOT);
  }

  /** Each key reaches its setting: a valid non-default value for every key, read back through the options. */
  @Test
  void everyKeyIsWired() throws IOException {
    Map<OptionKey, Map.Entry<String[], Function<PruneOptions, Object>>> cases = new LinkedHashMap<>();
    cases.put(PruneKeys.MODEL, Map.entry(new String[] {"other"}, PruneOptions::model));
    cases.put(PruneKeys.OUT, Map.entry(new String[] {"elsewhere"}, PruneOptions::out));
    cases.put(PruneKeys.METHOD, Map.entry(new String[] {"wanda", "calib", "c"}, options -> options.method().displayName()));
    cases.put(PruneKeys.SPARSITY, Map.entry(new String[] {"0.7"}, options -> options.target().toString()));
    cases.put(PruneKeys.PATTERN, Map.entry(new String[] {"2:4"}, options -> options.target().toString()));
    cases.put(PruneKeys.CALIB, Map.entry(new String[] {"c"}, options -> options.calibration().orElseThrow()));
    cases.put(PruneKeys.NSAMPLES, Map.entry(new String[] {"7"}, PruneOptions::nsamples));
    cases.put(PruneKeys.SEQLEN, Map.entry(new String[] {"64"}, PruneOptions::seqlen));
    cases.put(PruneKeys.SEED, Map.entry(new String[] {"-3"}, PruneOptions::seed));
    cases.put(PruneKeys.MODE, Map.entry(new String[] {"one-shot"}, PruneOptions::mode));
    cases.put(PruneKeys.PARTITIONS, Map.entry(new String[] {"3"}, PruneOptions::partitions));
    cases.put(PruneKeys.SAVE_STATS, Map.entry(new String[] {"true", "mode", "one-shot"}, PruneOptions::saveStatistics));
    cases.put(PruneKeys.STATS, Map.entry(new String[] {"s"}, options -> options.statistics().orElseThrow()));
    cases.put(PruneKeys.GRADIENT_NORM, Map.entry(new String[] {"l1", "method", "gblm", "calib", "c"}, PruneOptions::gradientNorm));
    cases.put(PruneKeys.SAVE_GRADS, Map.entry(new String[] {"true", "method", "prunerzero", "calib", "c"}, PruneOptions::saveGradients));
    cases.put(PruneKeys.GRADS, Map.entry(new String[] {"g", "method", "prunerzero"}, options -> options.gradients().orElseThrow()));
    cases.put(PruneKeys.ALLOCATION, Map.entry(new String[] {"global"}, PruneOptions::allocation));
    cases.put(PruneKeys.MIN_KEEP, Map.entry(new String[] {"0.2"}, PruneOptions::minKeep));
    cases.put(PruneKeys.OWL_LAMBDA, Map.entry(new String[] {"0.1"}, PruneOptions::owlLambda));
    cases.put(PruneKeys.OWL_M, Map.entry(new String[] {"7"}, PruneOptions::owlM));
    cases.put(PruneKeys.GROUP, Map.entry(new String[] {"layer", "method", "wanda", "calib", "c"}, PruneOptions::wandaGroup));
    cases.put(PruneKeys.CONFIG, Map.entry(new String[] {"rules.yaml"}, options -> options.config().orElseThrow()));
    cases.put(PruneKeys.UPDATE, Map.entry(new String[] {"admm", "calib", "c"}, options -> options.refinement().update()));
    cases.put(PruneKeys.ADMM_ITERATIONS, Map.entry(new String[] {"30"}, options -> options.refinement().admm().iterations()));
    cases.put(PruneKeys.ADMM_PERCDAMP, Map.entry(new String[] {"0.05"}, options -> options.refinement().admm().percdamp()));
    cases.put(PruneKeys.ADMM_RHO, Map.entry(new String[] {"2"}, options -> options.refinement().admm().rho()));
    cases.put(PruneKeys.ADMM_GRADUAL_STEPS, Map.entry(new String[] {"5"}, options -> options.refinement().admm().gradualSteps()));
    cases.put(PruneKeys.REFINE, Map.entry(new String[] {"dsnot", "method", "wanda", "calib", "c"}, options -> options.refinement().dsnot()));
    cases.put(PruneKeys.DSNOT_CYCLES, Map.entry(new String[] {"9"}, options -> options.refinement().dsnotSettings().maxCycles()));
    cases.put(PruneKeys.DSNOT_THRESHOLD, Map.entry(new String[] {"0.3"}, options -> options.refinement().dsnotSettings().updateThreshold()));
    cases.put(PruneKeys.DSNOT_VAR_POWER, Map.entry(new String[] {"2"}, options -> options.refinement().dsnotSettings().varPower()));
    cases.put(PruneKeys.DSNOT_SKIP, Map.entry(new String[] {"none"}, options -> options.refinement().dsnotSkip()));
    cases.put(PruneKeys.MOE_CALIBRATION, Map.entry(new String[] {"all"}, PruneOptions::moeCalibration));
    cases.put(PruneKeys.MIN_EXPERT_TOKENS, Map.entry(new String[] {"0"}, PruneOptions::minExpertTokens));
    cases.put(PruneKeys.SCORING_TASK_MB, Map.entry(new String[] {"2"}, PruneOptions::scoringTaskBytes));
    cases.put(PruneKeys.EXPERT_TASK_MB, Map.entry(new String[] {"64"}, PruneOptions::expertTaskBytes));
    cases.put(PruneKeys.GPUS_PER_TASK, Map.entry(new String[] {"0.25"}, PruneOptions::gpusPerTask));
    cases.put(PruneKeys.GPUS_PER_EXECUTOR, Map.entry(new String[] {"2"}, PruneOptions::gpusPerExecutor));
    cases.put(PruneKeys.GPU_DISCOVERY_SCRIPT, Map.entry(new String[] {"/g.sh"}, options -> options.gpuDiscoveryScript().orElseThrow()));
    cases.put(PruneKeys.GPU_VENDOR, Map.entry(new String[] {"nvidia.com"}, options -> options.gpuVendor().orElseThrow()));
    cases.put(PruneKeys.OVERWRITE, Map.entry(new String[] {"true"}, PruneOptions::overwrite));
    assertThat(cases.keySet()).containsExactlyInAnyOrderElementsOf(PruneKeys.ALL);

    Map<String, Object> expected = Map.ofEntries(
        Map.entry("model", "other"), Map.entry("out", "elsewhere"), Map.entry("method", "wanda"), Map.entry("sparsity", "0.7"),
        Map.entry("pattern", "2:4"), Map.entry("calib", "c"), Map.entry("nsamples", 7), Map.entry("seqlen", 64), Map.entry("seed", -3L),
        Map.entry("mode", PruneOptions.Mode.ONE_SHOT), Map.entry("partitions", 3), Map.entry("save-stats", true), Map.entry("stats", "s"),
        Map.entry("gradient-norm", GradientNorm.L1), Map.entry("save-grads", true), Map.entry("grads", "g"),
        Map.entry("allocation", PruneOptions.Allocation.GLOBAL), Map.entry("min-keep", 0.2), Map.entry("owl-lambda", 0.1),
        Map.entry("owl-m", 7.0), Map.entry("group", Wanda.Group.MATRIX), Map.entry("config", "rules.yaml"),
        Map.entry("update", Refinement.Update.ADMM), Map.entry("admm-iterations", 30), Map.entry("admm-percdamp", 0.05),
        Map.entry("admm-rho", 2.0), Map.entry("admm-gradual-steps", 5), Map.entry("refine", true), Map.entry("dsnot-cycles", 9),
        Map.entry("dsnot-threshold", 0.3), Map.entry("dsnot-var-power", 2.0), Map.entry("dsnot-skip", ""),
        Map.entry("moe-calibration", InputHook.ExpertInputs.ALL), Map.entry("min-expert-tokens", 0), Map.entry("scoring-task-mb", 2L << 20),
        Map.entry("expert-task-mb", 64L << 20),
        Map.entry("gpus-per-task", 0.25), Map.entry("gpus-per-executor", 2), Map.entry("gpu-discovery-script", "/g.sh"),
        Map.entry("gpu-vendor", "nvidia.com"), Map.entry("overwrite", true));
    for (Map.Entry<OptionKey, Map.Entry<String[], Function<PruneOptions, Object>>> entry : cases.entrySet()) {
      String[] values = entry.getValue().getKey();
      Map<String, String> given = base(values.length > 1 ? java.util.Arrays.copyOfRange(values, 1, values.length) : new String[0]);
      given.put(entry.getKey().name(), values[0]);
      if (entry.getKey().equals(PruneKeys.PATTERN)) {
        given.remove("sparsity");
      }
      Object value = entry.getValue().getValue().apply(resolve(Map.of(), given));
      assertThat(value).as(entry.getKey().name()).isEqualTo(expected.get(entry.getKey().name()));
    }
  }

  @Test
  void theGivenValueWinsOverTheConfWhichWinsOverTheDefault() throws IOException {
    Map<String, String> conf = Map.of("spark.sparkprune.nsamples", "64", "spark.sparkprune.gpus-per-task", "1",
        "spark.sparkprune.gpu-vendor", "nvidia.com", "spark.sparkprune.mode", "one-shot");
    PruneOptions fromConf = resolve(conf, base());
    assertThat(fromConf.nsamples()).isEqualTo(64);
    assertThat(fromConf.gpusPerTask()).isEqualTo(1.0);
    assertThat(fromConf.gpuVendor()).contains("nvidia.com");
    assertThat(fromConf.mode()).isEqualTo(PruneOptions.Mode.ONE_SHOT);
    PruneOptions given = resolve(conf, base("nsamples", "32", "gpus-per-task", "0.5", "mode", "sequential"));
    assertThat(given.nsamples()).isEqualTo(32);
    assertThat(given.gpusPerTask()).isEqualTo(0.5);
    assertThat(given.mode()).isEqualTo(PruneOptions.Mode.SEQUENTIAL);

    // The earlier conf spelling of the GPU amount still works; the current one wins over it.
    assertThat(resolve(Map.of("spark.sparkprune.gpusPerTask", "2"), base()).gpusPerTask()).isEqualTo(2.0);
    assertThat(resolve(Map.of("spark.sparkprune.gpusPerTask", "2", "spark.sparkprune.gpus-per-task", "1"), base()).gpusPerTask())
        .isEqualTo(1.0);
    // Inputs and outputs differ per run: the conf never sets them.
    assertThatThrownBy(() -> resolve(Map.of("spark.sparkprune.model", "m"), Map.of("out", "o", "method", "magnitude")))
        .isInstanceOf(ValidationException.class).hasMessage("Missing --model");
    assertThat(resolve(Map.of("spark.sparkprune.overwrite", "true"), base()).overwrite()).isFalse();
  }

  @Test
  void badValuesAreOneLineAndNameTheirSource() {
    Map<String, String> expected = new LinkedHashMap<>();
    expected.put("nsamples=abc", "Invalid --nsamples abc: must be a positive integer");
    expected.put("nsamples=0", "Invalid --nsamples 0: must be a positive integer");
    expected.put("seed=1.5", "Invalid --seed 1.5: must be an integer");
    expected.put("min-keep=lots", "Invalid --min-keep lots: must be a number");
    expected.put("min-expert-tokens=-1", "Invalid --min-expert-tokens -1: must be 0 or more");
    expected.put("group=column", "Invalid --group column: use row or layer");
    expected.put("refine=owl", "Invalid --refine owl: use dsnot or none");
    expected.put("mode=oneshot", "Invalid --mode oneshot: use sequential or one-shot");
    expected.put("overwrite=yes", "Invalid --overwrite yes: use true or false");
    expected.put("pattern=0.5", "Invalid --pattern 0.5: expected N:M such as 2:4");
    expected.put("gpus-per-task=0.7", "Invalid --gpus-per-task 0.7: use a whole number, or a fraction of at most 0.5 to share a GPU among tasks");
    for (Map.Entry<String, String> entry : expected.entrySet()) {
      String[] keyValue = entry.getKey().split("=", 2);
      assertThatThrownBy(() -> resolve(keyValue[0], keyValue[1])).as(entry.getKey())
          .isInstanceOf(ValidationException.class).hasMessage(entry.getValue());
    }
    assertThatThrownBy(() -> resolve("sparsity", "0.5", "pattern", "2:4"))
        .isInstanceOf(ValidationException.class).hasMessage("Give either --sparsity or --pattern, not both");
    assertThatThrownBy(() -> resolve("min_keep", "0.1"))
        .isInstanceOf(ValidationException.class).hasMessageStartingWith("Unknown prune settings [min_keep] (known: model, out, method,");

    // From the conf, the message names the conf key instead.
    assertThatThrownBy(() -> resolve(Map.of("spark.sparkprune.nsamples", "many"), base()))
        .isInstanceOf(ValidationException.class).hasMessage("Invalid spark.sparkprune.nsamples many: must be a positive integer");
    assertThatThrownBy(() -> resolve(Map.of("spark.sparkprune.gpusPerTask", "one"), base()))
        .isInstanceOf(ValidationException.class).hasMessage("Invalid spark.sparkprune.gpusPerTask one: must be a number");
    assertThatThrownBy(() -> resolve(Map.of("spark.sparkprune.gpus-per-task", "0.7"), base()))
        .isInstanceOf(ValidationException.class).hasMessageStartingWith("Invalid spark.sparkprune.gpus-per-task 0.7: use a whole number");
    assertThatThrownBy(() -> resolve(Map.of("spark.sparkprune.mode", "fast"), base()))
        .isInstanceOf(ValidationException.class).hasMessage("Invalid spark.sparkprune.mode fast: use sequential or one-shot");
  }

  /** Where gradient methods compose and where they do not: one line each, naming the keys as given. */
  @Test
  void gradientMethodsRefuseWhatCannotServeThem() throws IOException {
    Map<String[], String> refused = new LinkedHashMap<>();
    refused.put(new String[] {"method", "gblm", "stats", "s"}, "Cannot use --stats s with --method gblm alone: statistics saved by"
        + " --save-stats come from a forward-only run and hold no gradients; add --grads URI (saved by --save-grads), or calibrate with"
        + " --calib instead");
    refused.put(new String[] {"method", "prunerzero", "stats", "s", "calib", "c"}, "Cannot use --stats s with --method prunerzero alone:"
        + " statistics saved by --save-stats come from a forward-only run and hold no gradients; add --grads URI (saved by --save-grads),"
        + " or calibrate with --calib instead");
    refused.put(new String[] {"method", "prunerzero"},
        "Missing --calib for --method prunerzero: its gradients come from a backward pass over calibration text (or give --grads)");
    refused.put(new String[] {"method", "wanda", "calib", "c", "save-grads", "true"},
        "--save-grads is for the methods that score with gradients: use it with --method gblm or prunerzero");
    refused.put(new String[] {"method", "wanda", "calib", "c", "grads", "g"},
        "--grads is for the methods that score with gradients: use it with --method gblm or prunerzero");
    refused.put(new String[] {"method", "gblm", "grads", "g", "save-grads", "true"}, "Give either --grads or --save-grads, not both");
    refused.put(new String[] {"method", "wanda", "calib", "c", "gradient-norm", "l1"},
        "--gradient-norm l1 sets the gradient statistic of gblm and prunerzero: use it with --method gblm or prunerzero");
    refused.put(new String[] {"method", "gblm", "calib", "c", "gradient-norm", "l3"}, "Invalid --gradient-norm l3: use l2 or l1");
    refused.put(new String[] {"method", "gblm", "calib", "c", "refine", "dsnot"}, "Cannot combine --method, --update and --refine: DSnoT"
        + " refines a Wanda or RIA mask: use it with the wanda or ria method, not gblm");
    refused.put(new String[] {"method", "prunerzero", "calib", "c", "update", "admm-gradual"}, "Cannot combine --method, --update and"
        + " --refine: Gradual ADMM chooses its own mask from Wanda's metric: use it with the wanda method and without DSnoT");
    refused.put(new String[] {"method", "gblm", "calib", "c", "allocation", "global"}, "--allocation global compares scores across"
        + " layers: use it with --method magnitude (or, for global, --method wanda --group layer)");
    refused.put(new String[] {"method", "prunerzero", "grads", "g", "allocation", "owl"}, "--allocation owl measures outliers of Wanda"
        + " scores on calibration text: use it with --calib and a calibrated method");
    for (Map.Entry<String[], String> entry : refused.entrySet()) {
      assertThatThrownBy(() -> resolve(entry.getKey())).as(String.join(" ", entry.getKey()))
          .isInstanceOf(ValidationException.class).hasMessage(entry.getValue());
    }
    // What composes: saved statistics with saved gradients, OWL, the ADMM update, N:M, l1.
    PruneOptions reused = resolve("method", "gblm", "stats", "s", "grads", "g", "pattern", "2:4", "gradient-norm", "l1");
    assertThat(reused.mode()).isEqualTo(PruneOptions.Mode.ONE_SHOT);
    assertThat(reused.gradientSettings().load()).contains("g");
    assertThat(reused.settingsKey()).endsWith("|gradients=l1@g");
    assertThat(reused.output().inputs()).containsEntry("--grads", "g");
    assertThat(resolve("method", "prunerzero", "calib", "c", "allocation", "owl", "update", "admm").refinement().update())
        .isEqualTo(Refinement.Update.ADMM);
    // Runs without gradients keep their settings keys.
    assertThat(resolve("method", "wanda", "calib", "c").settingsKey()).doesNotContain("gradients");
    assertThatThrownBy(() -> JobInputs.checkBackward("bloom", "gblm")).isInstanceOf(ValidationException.class)
        .hasMessageStartingWith("Cannot prune with gblm: model_type 'bloom' has no backward pass for the gradients (supported: llama, ");
  }

  @Test
  void preTokenizedRowsGiveTheSeqlenUnlessItIsSet() throws IOException {
    PruneOptionsResolver resolver = new PruneOptionsResolver(Map.of(), new FixedInputs(Map.of("rows.parquet", 128), Map.of()));
    assertThat(resolver.resolve(base("method", "wanda", "calib", "rows.parquet")).seqlen()).isEqualTo(128);
    assertThat(resolver.resolve(base("method", "wanda", "calib", "rows.parquet", "seqlen", "64")).seqlen()).isEqualTo(64);
    assertThat(resolver.resolve(base("method", "wanda", "calib", "text.txt")).seqlen()).isEqualTo(2048);
    PruneOptionsResolver withConf = new PruneOptionsResolver(
        Map.of("spark.sparkprune.seqlen", "256"), new FixedInputs(Map.of("rows.parquet", 128), Map.of()));
    assertThat(withConf.resolve(base("method", "wanda", "calib", "rows.parquet")).seqlen()).isEqualTo(256);
  }

  @Test
  void theSettingsKeyHashesTheRulesContent() throws IOException {
    Map<String, String> given = base("config", "rules.yaml");
    String before = new PruneOptionsResolver(Map.of(), new FixedInputs(Map.of(), Map.of("rules.yaml", "aa11"))).resolve(given).settingsKey();
    String after = new PruneOptionsResolver(Map.of(), new FixedInputs(Map.of(), Map.of("rules.yaml", "bb22"))).resolve(given).settingsKey();
    assertThat(before).contains("rules.yaml@sha256:aa11").isNotEqualTo(after);
    // Same content under the same path: the same key.
    assertThat(new PruneOptionsResolver(Map.of(), new FixedInputs(Map.of(), Map.of("rules.yaml", "aa11"))).resolve(given).settingsKey())
        .isEqualTo(before);
  }

  @Test
  void confValuesOfEveryTuningKeyAreRead() throws IOException {
    // The keys a cluster may set are the tuning ones; inputs, outputs and the method are per run.
    List<String> perRun = PruneKeys.ALL.stream().filter(key -> !key.fromConf()).map(OptionKey::name).toList();
    assertThat(perRun).containsExactlyInAnyOrder("model", "out", "method", "sparsity", "pattern", "calib", "stats", "save-stats", "config",
        "overwrite", "grads", "save-grads");
    Map<String, String> conf = new HashMap<>();
    conf.put("spark.sparkprune.seed", "9");
    conf.put("spark.sparkprune.scoring-task-mb", "8");
    PruneOptions options = resolve(conf, base());
    assertThat(options.seed()).isEqualTo(9);
    assertThat(options.scoringTaskBytes()).isEqualTo(8L << 20);
  }
}
