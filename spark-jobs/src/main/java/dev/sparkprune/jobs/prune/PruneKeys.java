package dev.sparkprune.jobs.prune;

import static java.util.Map.entry;

import dev.sparkprune.jobs.gradient.GradientNorm;
import dev.sparkprune.jobs.options.CommonKeys;
import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.options.Parsers;
import dev.sparkprune.jobs.spark.GpuScheduling;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.Admm;
import dev.sparkprune.scoring.methods.Dsnot;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.ValidationException;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Every setting of the prune job, in one place: its key, type, checks, default and one-line
 * description. The CLI's {@code prune} options, the batch manifest's columns, the
 * {@code spark.sparkprune.*} conf keys and the help text are all generated from {@link #ALL};
 * {@link PruneOptionsResolver} turns given values into {@code PruneOptions} through
 * {@link dev.sparkprune.jobs.options.OptionValues}. A new setting is one constant here, one line
 * in {@link #ALL} and one line in the resolver; a rule over several keys goes in
 * {@link PruneOptions#RULES}.
 */
public final class PruneKeys {
  /** Spark conf prefix: {@code spark.sparkprune.<key>} sets a tuning key for every run of a cluster. */
  public static final String CONF_PREFIX = OptionKey.CONF_PREFIX;

  /**
   * Conf keys of earlier releases, still read after the current spelling and deprecated:
   * {@code spark.sparkprune.gpusPerTask} is {@code spark.sparkprune.gpus-per-task}.
   */
  public static final Map<String, String> DEPRECATED_CONF = Map.of("gpus-per-task", CONF_PREFIX + "gpusPerTask");

  // Inputs and outputs; never from the Spark conf: they differ per run.

  /** The model archive: a folder of safetensors shards with config.json, local or a Hadoop URI. */
  public static final OptionKey<String> MODEL = OptionKey.builder("model", Parsers.TEXT).label("URI").required()
      .description("Model archive to prune (local path or Hadoop URI).").build();

  /** The output folder; a batch sets it to {@code <out-root>/<name>}. */
  public static final OptionKey<String> OUT = OptionKey.builder("out", Parsers.TEXT).label("URI").required()
      .description("Output folder: masks, pruned archive, report.json.").build();

  /** The pruning method. */
  public static final OptionKey<PruningMethod> METHOD = OptionKey.builder("method", PruningMethod::parse).label("M").required()
      .description("wanda, sparsegpt, magnitude, ria, gblm or prunerzero.").build();

  public static final double SPARSITY_DEFAULT = CommonKeys.SPARSITY_DEFAULT;

  /** Unstructured target; exclusive with {@link #PATTERN}. */
  public static final OptionKey<SparsityTarget> SPARSITY = CommonKeys.SPARSITY;

  /** N:M semi-structured target; exclusive with {@link #SPARSITY}. */
  public static final OptionKey<SparsityTarget> PATTERN = CommonKeys.PATTERN;

  /** Calibration source: text (plain, JSONL, Parquet 'text') or pre-tokenized input_ids rows. */
  public static final OptionKey<String> CALIB = OptionKey.builder("calib", Parsers.TEXT).label("URI")
      .description("Calibration text, or pre-tokenized input_ids rows (JSONL, Parquet).").build();

  /** Statistics saved by an earlier one-shot run, reused instead of calibrating. */
  public static final OptionKey<String> STATS = OptionKey.builder("stats", Parsers.TEXT).label("URI")
      .description("Reuse statistics saved by --save-stats (implies --mode one-shot).").build();

  /** Keep the dense statistics under {@code <out>/stats}; exclusive with {@link #STATS}. */
  public static final OptionKey<Boolean> SAVE_STATS = OptionKey.flag("save-stats", "Keep the dense calibration statistics under <out>/stats.");

  /** Gradient statistics saved by an earlier run, reused instead of the backward pass. */
  public static final OptionKey<String> GRADS = OptionKey.builder("grads", Parsers.TEXT).label("URI")
      .description("Reuse gradients saved by --save-grads (gblm, prunerzero).").build();

  /** Keep the dense model's gradient statistics under {@code <out>/grads}; exclusive with {@link #GRADS}. */
  public static final OptionKey<Boolean> SAVE_GRADS = OptionKey.flag("save-grads", "Keep the dense gradient statistics under <out>/grads.");

  /** Per-layer rules (YAML); a batch's skip key hashes the file's content. */
  public static final OptionKey<String> CONFIG = OptionKey.builder("config", Parsers.TEXT).label("FILE")
      .description("Per-layer rules (YAML), see 'Per-layer rules'.").build();

  /** Replace an existing --out that is not a sparkprune output. */
  public static final OptionKey<Boolean> OVERWRITE = CommonKeys.OVERWRITE;

  // Calibration.

  public static final int NSAMPLES_DEFAULT = CommonKeys.NSAMPLES_DEFAULT;

  /** Calibration samples. */
  public static final OptionKey<Integer> NSAMPLES = CommonKeys.NSAMPLES;

  public static final int SEQLEN_DEFAULT = CommonKeys.SEQLEN_DEFAULT;

  /** Tokens per calibration sample; pre-tokenized rows give their own length when it is not set. */
  public static final OptionKey<Integer> SEQLEN = CommonKeys.SEQLEN;

  public static final long SEED_DEFAULT = CommonKeys.SEED_DEFAULT;

  /** Seed of the calibration window offsets. */
  public static final OptionKey<Long> SEED = CommonKeys.SEED;

  /** Sequential (the references') or one-shot statistics. */
  public static final OptionKey<PruneOptions.Mode> MODE = OptionKey.builder("mode",
          Parsers.oneOf(entry("sequential", PruneOptions.Mode.SEQUENTIAL), entry("one-shot", PruneOptions.Mode.ONE_SHOT)))
      .label("M").defaultValue("sequential").fromConf().description("sequential or one-shot (one-shot with --stats).").build();

  /** Calibration partitions; none means Spark's default parallelism. */
  public static final OptionKey<Integer> PARTITIONS = CommonKeys.PARTITIONS;

  // Allocation.

  /** How a model-level sparsity becomes per-layer targets. */
  public static final OptionKey<PruneOptions.Allocation> ALLOCATION = OptionKey.builder("allocation", Parsers.oneOf(
          entry("uniform", PruneOptions.Allocation.UNIFORM), entry("global", PruneOptions.Allocation.GLOBAL),
          entry("lamp", PruneOptions.Allocation.LAMP), entry("owl", PruneOptions.Allocation.OWL)))
      .label("A").defaultValue("uniform").fromConf().description("uniform, global, lamp or owl.").build();

  public static final double MIN_KEEP_DEFAULT = 0.01;

  /** Global allocations keep at least this fraction of every layer, against layer collapse. */
  public static final OptionKey<Double> MIN_KEEP = OptionKey.builder("min-keep", Parsers.NUMBER).label("F").defaultValue(MIN_KEEP_DEFAULT)
      .fromConf().check(value -> ValidationException.check(value >= 0 && value < 1, "must be in [0, 1)"))
      .description("Fraction of each layer a global allocation keeps.").build();

  public static final double OWL_LAMBDA_DEFAULT = 0.08;

  /** OWL's spread: per-block ratios in [0, 2 lambda]. */
  public static final OptionKey<Double> OWL_LAMBDA = OptionKey.builder("owl-lambda", Parsers.NUMBER).label("L")
      .defaultValue(OWL_LAMBDA_DEFAULT).fromConf().check(value -> ValidationException.check(value > 0 && value < 0.5, "must be in (0, 0.5)"))
      .description("OWL: ratios spread over [0, 2 L].").build();

  public static final double OWL_M_DEFAULT = 5;

  /** OWL's outlier threshold: scores above M x the block mean. */
  public static final OptionKey<Double> OWL_M = OptionKey.builder("owl-m", Parsers.NUMBER).label("M").defaultValue(OWL_M_DEFAULT)
      .fromConf().check(value -> ValidationException.check(value > 0, "must be positive"))
      .description("OWL: outliers score above M x the block mean.").build();

  /** Wanda's comparison group. */
  public static final OptionKey<Wanda.Group> GROUP = OptionKey.builder("group",
          Parsers.oneOf(entry("row", Wanda.Group.ROW), entry("layer", Wanda.Group.MATRIX)))
      .label("G").defaultValue("row").fromConf().description("Wanda's comparison group: row or layer.").build();

  /** Which accumulation of the per-sample gradients GBLM and Pruner-Zero score with. */
  public static final OptionKey<GradientNorm> GRADIENT_NORM = OptionKey.builder("gradient-norm", GradientNorm::parse).label("N")
      .defaultValue("l2").fromConf().description("G of gblm and prunerzero: l2 or l1 over samples.").build();

  // Update and refinement; defaults are the reference implementations', held in scoring.

  /** The weight update after each mask. */
  public static final OptionKey<Refinement.Update> UPDATE = OptionKey.builder("update", Refinement.Update::parse).label("U")
      .defaultValue("none").fromConf().description("Weight update: admm, admm-gradual or none.").build();

  public static final OptionKey<Integer> ADMM_ITERATIONS = OptionKey.builder("admm-iterations", Parsers.POSITIVE_INTEGER).label("N")
      .defaultValue(Admm.DEFAULTS.iterations()).fromConf().description("ADMM iterations.").build();

  public static final OptionKey<Double> ADMM_PERCDAMP = OptionKey.builder("admm-percdamp", Parsers.NUMBER).label("F")
      .defaultValue(Admm.DEFAULTS.percdamp()).fromConf().description("ADMM damping.").build();

  public static final OptionKey<Double> ADMM_RHO = OptionKey.builder("admm-rho", Parsers.NUMBER).label("R")
      .defaultValue(Admm.DEFAULTS.rho()).fromConf().description("ADMM penalty.").build();

  /** Gradual ADMM's sparsity steps, at most the iterations; by default the reference's, or the iterations when fewer. */
  public static final OptionKey<Integer> ADMM_GRADUAL_STEPS = OptionKey.builder("admm-gradual-steps", Parsers.POSITIVE_INTEGER).label("N")
      .defaultValue(Admm.DEFAULTS.gradualSteps()).fromConf().description("Gradual ADMM steps (at most the iterations).").build();

  /** Mask refinement: whether DSnoT runs. */
  public static final OptionKey<Boolean> REFINE = OptionKey.builder("refine",
          Parsers.oneOf(entry("dsnot", true), entry("none", false)))
      .label("R").defaultValue("none").fromConf().description("Mask refinement: dsnot or none.").build();

  public static final OptionKey<Integer> DSNOT_CYCLES = OptionKey.builder("dsnot-cycles", Parsers.POSITIVE_INTEGER).label("N")
      .defaultValue(Dsnot.DEFAULTS.maxCycles()).fromConf().description("DSnoT cycles.").build();

  public static final OptionKey<Double> DSNOT_THRESHOLD = OptionKey.builder("dsnot-threshold", Parsers.NUMBER).label("F")
      .defaultValue(Dsnot.DEFAULTS.updateThreshold()).fromConf().description("DSnoT update threshold.").build();

  public static final OptionKey<Double> DSNOT_VAR_POWER = OptionKey.builder("dsnot-var-power", Parsers.NUMBER).label("P")
      .defaultValue(Dsnot.DEFAULTS.varPower()).fromConf().description("DSnoT variance power.").build();

  /** Linears DSnoT leaves alone, as a regular expression; "none" refines all (the empty pattern). */
  public static final OptionKey<String> DSNOT_SKIP = OptionKey.<String>builder("dsnot-skip", text -> text.equals("none") ? "" : text)
      .label("REGEX").defaultValue(Refinement.DSNOT_SKIP_DEFAULT).fromConf().check(PruneKeys::checkPattern)
      .description("Linears DSnoT skips (regex, or none).").build();

  // Mixture of experts and scoring tasks.

  /** Which tokens a routed expert's statistics come from. */
  public static final OptionKey<InputHook.ExpertInputs> MOE_CALIBRATION = OptionKey.builder("moe-calibration",
          Parsers.oneOf(entry("routed", InputHook.ExpertInputs.ROUTED), entry("all", InputHook.ExpertInputs.ALL)))
      .label("C").defaultValue("routed").fromConf().description("MoE expert statistics: routed or all tokens.").build();

  public static final int MIN_EXPERT_TOKENS_DEFAULT = 16;

  /** A routed expert with fewer calibration tokens is pruned with magnitude. */
  public static final OptionKey<Integer> MIN_EXPERT_TOKENS = OptionKey.builder("min-expert-tokens", Parsers.INTEGER).label("N")
      .defaultValue(MIN_EXPERT_TOKENS_DEFAULT).fromConf().check(value -> ValidationException.check(value >= 0, "must be 0 or more"))
      .description("Fewer routed tokens: the expert is pruned by magnitude.").build();

  public static final int SCORING_TASK_MB_DEFAULT = 64;

  /** Linears are grouped into scoring tasks of about this many MB of float weights. */
  public static final OptionKey<Integer> SCORING_TASK_MB = OptionKey.builder("scoring-task-mb", Parsers.POSITIVE_INTEGER).label("MB")
      .defaultValue(SCORING_TASK_MB_DEFAULT).fromConf().description("Float-weight MB per scoring task.").build();

  /** Budget of an expert task of an expert-parallel MoE block; none: derived from executor memory. */
  public static final OptionKey<Integer> EXPERT_TASK_MB = CommonKeys.EXPERT_TASK_MB;

  // GPUs: see GpuScheduling.

  /** GPUs per calibration and scoring task; 0 schedules no GPUs. */
  public static final OptionKey<Double> GPUS_PER_TASK = OptionKey.builder("gpus-per-task", Parsers.NUMBER).label("A").defaultValue(0)
      .fromConf().check(value -> ValidationException.check(value == 0 || GpuScheduling.isTaskAmount(value),
          "use a whole number, or a fraction of at most 0.5 to share a GPU among tasks"))
      .description("GPUs per task: a whole number, or <= 0.5 to share one.").build();

  /** GPUs of each executor the GPU stages request under dynamic allocation. */
  public static final OptionKey<Integer> GPUS_PER_EXECUTOR = OptionKey.builder("gpus-per-executor", Parsers.POSITIVE_INTEGER).label("N")
      .fromConf().description("GPUs per new executor (default: ceil(A) or the executor conf).").build();

  public static final OptionKey<String> GPU_DISCOVERY_SCRIPT = OptionKey.builder("gpu-discovery-script", Parsers.TEXT).label("PATH")
      .fromConf().description("GPU discovery script of new executors (default: the executor conf).").build();

  public static final OptionKey<String> GPU_VENDOR = OptionKey.builder("gpu-vendor", Parsers.TEXT).label("V")
      .fromConf().description("GPU vendor of new executors, e.g. nvidia.com.").build();

  /** Every key, in the order the help lists them. */
  /** The keys whose values are locations, qualified on the driver (not the GPU discovery script: a path on each executor). */
  public static final List<OptionKey<?>> LOCATIONS = List.of(MODEL, OUT, CALIB, STATS, GRADS, CONFIG);

  public static final List<OptionKey<?>> ALL = List.of(
      MODEL, OUT, METHOD, SPARSITY, PATTERN, CALIB, NSAMPLES, SEQLEN, SEED, MODE, PARTITIONS, SAVE_STATS, STATS,
      GRADIENT_NORM, SAVE_GRADS, GRADS,
      ALLOCATION, MIN_KEEP, OWL_LAMBDA, OWL_M, GROUP, CONFIG,
      UPDATE, ADMM_ITERATIONS, ADMM_PERCDAMP, ADMM_RHO, ADMM_GRADUAL_STEPS,
      REFINE, DSNOT_CYCLES, DSNOT_THRESHOLD, DSNOT_VAR_POWER, DSNOT_SKIP,
      MOE_CALIBRATION, MIN_EXPERT_TOKENS, SCORING_TASK_MB, EXPERT_TASK_MB,
      GPUS_PER_TASK, GPUS_PER_EXECUTOR, GPU_DISCOVERY_SCRIPT, GPU_VENDOR,
      OVERWRITE);

  private PruneKeys() {}

  /** The key of that name, if any. */
  public static Optional<OptionKey<?>> named(String name) {
    return ALL.stream().filter(key -> key.name().equals(name)).findFirst();
  }

  private static void checkPattern(String pattern) {
    try {
      Pattern.compile(pattern);
    } catch (PatternSyntaxException e) {
      throw new ValidationException("not a regular expression (" + e.getDescription() + ")");
    }
  }
}
