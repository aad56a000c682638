package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.spark.GpuScheduling;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.allocation.Allocation;
import dev.sparkprune.scoring.methods.Admm;
import dev.sparkprune.scoring.methods.Dsnot;
import dev.sparkprune.scoring.methods.Refinement;
import java.util.List;

/**
 * Every setting of the prune job, in one place: its key, default and one-line description. The
 * CLI's {@code prune} options, the batch manifest's columns, the {@code spark.sparkprune.*}
 * conf keys and the help text are all generated from {@link #ALL}; {@link PruneOptionsResolver}
 * turns given values into {@code PruneOptions}. A new setting is one constant here, one line in
 * {@link #ALL} and one line in the resolver.
 */
public final class PruneKeys {
  /** Spark conf prefix: {@code spark.sparkprune.<key>} sets a tuning key for every run of a cluster. */
  public static final String CONF_PREFIX = "spark.sparkprune.";

  // Inputs and outputs; never from the Spark conf: they differ per run.

  /** The model archive: a folder of safetensors shards with config.json, local or a Hadoop URI. */
  public static final OptionKey MODEL = required("model", "URI", "Model archive to prune (local path or Hadoop URI).");

  /** The output folder; a batch sets it to {@code <out-root>/<name>}. */
  public static final OptionKey OUT = required("out", "URI", "Output folder: masks, pruned archive, report.json.");

  /** The pruning method. */
  public static final OptionKey METHOD = required("method", "M", "wanda, sparsegpt, magnitude or ria.");

  public static final double SPARSITY_DEFAULT = 0.5;

  /** Unstructured target; exclusive with {@link #PATTERN}. */
  public static final OptionKey SPARSITY = value("sparsity", "S", SPARSITY_DEFAULT, "Fraction of each linear pruned (unstructured).", false);

  /** N:M semi-structured target; exclusive with {@link #SPARSITY}. */
  public static final OptionKey PATTERN = value("pattern", "N:M", "", "Prune N of every M consecutive weights, e.g. 2:4.", false);

  /** Calibration source: text (plain, JSONL, Parquet 'text') or pre-tokenized input_ids rows. */
  public static final OptionKey CALIB = value("calib", "URI", "", "Calibration text, or pre-tokenized input_ids rows (JSONL, Parquet).", false);

  /** Statistics saved by an earlier one-shot run, reused instead of calibrating. */
  public static final OptionKey STATS = value("stats", "URI", "", "Reuse statistics saved by --save-stats (implies --mode one-shot).", false);

  /** Keep the dense statistics under {@code <out>/stats}; exclusive with {@link #STATS}. */
  public static final OptionKey SAVE_STATS = flag("save-stats", "Keep the dense calibration statistics under <out>/stats.");

  /** Per-layer rules (YAML); a batch's skip key hashes the file's content. */
  public static final OptionKey CONFIG = value("config", "FILE", "", "Per-layer rules (YAML), see 'Per-layer rules'.", false);

  /** Replace an existing --out that is not a sparkprune output. */
  public static final OptionKey OVERWRITE = flag("overwrite", "Replace an existing --out that is not a sparkprune output.");

  // Calibration.

  public static final int NSAMPLES_DEFAULT = 128;

  /** Calibration samples. */
  public static final OptionKey NSAMPLES = value("nsamples", "N", NSAMPLES_DEFAULT, "Calibration samples.", true);

  public static final int SEQLEN_DEFAULT = 2048;

  /** Tokens per calibration sample; pre-tokenized rows give their own length when it is not set. */
  public static final OptionKey SEQLEN = value("seqlen", "N", SEQLEN_DEFAULT, "Tokens per sample (pre-tokenized rows: their length).", true);

  public static final long SEED_DEFAULT = 0;

  /** Seed of the calibration window offsets. */
  public static final OptionKey SEED = value("seed", "N", SEED_DEFAULT, "Seed of the calibration windows.", true);

  /** Sequential (the references') or one-shot statistics. */
  public static final OptionKey MODE = value("mode", "M", "sequential", "sequential or one-shot (one-shot with --stats).", true);

  /** Calibration partitions; 0 means Spark's default parallelism. */
  public static final OptionKey PARTITIONS = value("partitions", "N", "", "Calibration partitions (default: Spark's parallelism).", true);

  // Allocation.

  /** How a model-level sparsity becomes per-layer targets. */
  public static final OptionKey ALLOCATION = value("allocation", "A", "uniform", "uniform, global, lamp or owl.", true);

  public static final double MIN_KEEP_DEFAULT = 0.01;

  /** Global allocations keep at least this fraction of every layer, against layer collapse. */
  public static final OptionKey MIN_KEEP = value("min-keep", "F", MIN_KEEP_DEFAULT, "Fraction of each layer a global allocation keeps.", true);

  public static final double OWL_LAMBDA_DEFAULT = 0.08;

  /** OWL's spread: per-block ratios in [0, 2 lambda]. */
  public static final OptionKey OWL_LAMBDA = value("owl-lambda", "L", OWL_LAMBDA_DEFAULT, "OWL: ratios spread over [0, 2 L].", true);

  public static final double OWL_M_DEFAULT = 5;

  /** OWL's outlier threshold: scores above M x the block mean. */
  public static final OptionKey OWL_M = value("owl-m", "M", OWL_M_DEFAULT, "OWL: outliers score above M x the block mean.", true);

  /** Wanda's comparison group. */
  public static final OptionKey GROUP = value("group", "G", "row", "Wanda's comparison group: row or layer.", true);

  // Update and refinement; defaults are the reference implementations', held in scoring.

  /** The weight update after each mask. */
  public static final OptionKey UPDATE = value("update", "U", "none", "Weight update: admm, admm-gradual or none.", true);

  public static final OptionKey ADMM_ITERATIONS =
      value("admm-iterations", "N", Admm.DEFAULTS.iterations(), "ADMM iterations.", true);

  public static final OptionKey ADMM_PERCDAMP = value("admm-percdamp", "F", Admm.DEFAULTS.percdamp(), "ADMM damping.", true);

  public static final OptionKey ADMM_RHO = value("admm-rho", "R", Admm.DEFAULTS.rho(), "ADMM penalty.", true);

  /** Gradual ADMM's sparsity steps, at most the iterations. */
  public static final OptionKey ADMM_GRADUAL_STEPS =
      value("admm-gradual-steps", "N", Admm.DEFAULTS.gradualSteps(), "Gradual ADMM steps (at most the iterations).", true);

  /** Mask refinement. */
  public static final OptionKey REFINE = value("refine", "R", "none", "Mask refinement: dsnot or none.", true);

  public static final OptionKey DSNOT_CYCLES = value("dsnot-cycles", "N", Dsnot.DEFAULTS.maxCycles(), "DSnoT cycles.", true);

  public static final OptionKey DSNOT_THRESHOLD =
      value("dsnot-threshold", "F", Dsnot.DEFAULTS.updateThreshold(), "DSnoT update threshold.", true);

  public static final OptionKey DSNOT_VAR_POWER = value("dsnot-var-power", "P", Dsnot.DEFAULTS.varPower(), "DSnoT variance power.", true);

  /** Linears DSnoT leaves alone; "none" refines all. */
  public static final OptionKey DSNOT_SKIP =
      value("dsnot-skip", "REGEX", Refinement.DSNOT_SKIP_DEFAULT, "Linears DSnoT skips (regex, or none).", true);

  // Mixture of experts and scoring tasks.

  /** Which tokens a routed expert's statistics come from. */
  public static final OptionKey MOE_CALIBRATION = value("moe-calibration", "C", "routed", "MoE expert statistics: routed or all tokens.", true);

  public static final int MIN_EXPERT_TOKENS_DEFAULT = 16;

  /** A routed expert with fewer calibration tokens is pruned with magnitude. */
  public static final OptionKey MIN_EXPERT_TOKENS =
      value("min-expert-tokens", "N", MIN_EXPERT_TOKENS_DEFAULT, "Fewer routed tokens: the expert is pruned by magnitude.", true);

  public static final int SCORING_TASK_MB_DEFAULT = 64;

  /** Linears are grouped into scoring tasks of about this many MB of float weights. */
  public static final OptionKey SCORING_TASK_MB =
      value("scoring-task-mb", "MB", SCORING_TASK_MB_DEFAULT, "Float-weight MB per scoring task.", true);

  // GPUs: see GpuScheduling.

  /** GPUs per calibration and scoring task; 0 schedules no GPUs. */
  public static final OptionKey GPUS_PER_TASK =
      value("gpus-per-task", "A", 0, "GPUs per task: a whole number, or <= 0.5 to share one.", true);

  /** GPUs of each executor the GPU stages request under dynamic allocation. */
  public static final OptionKey GPUS_PER_EXECUTOR =
      value("gpus-per-executor", "N", "", "GPUs per new executor (default: ceil(A) or the executor conf).", true);

  public static final OptionKey GPU_DISCOVERY_SCRIPT =
      value("gpu-discovery-script", "PATH", "", "GPU discovery script of new executors (default: the executor conf).", true);

  public static final OptionKey GPU_VENDOR = value("gpu-vendor", "V", "", "GPU vendor of new executors, e.g. nvidia.com.", true);

  /** Every key, in the order the help lists them. */
  public static final List<OptionKey> ALL = List.of(
      MODEL, OUT, METHOD, SPARSITY, PATTERN, CALIB, NSAMPLES, SEQLEN, SEED, MODE, PARTITIONS, SAVE_STATS, STATS,
      ALLOCATION, MIN_KEEP, OWL_LAMBDA, OWL_M, GROUP, CONFIG,
      UPDATE, ADMM_ITERATIONS, ADMM_PERCDAMP, ADMM_RHO, ADMM_GRADUAL_STEPS,
      REFINE, DSNOT_CYCLES, DSNOT_THRESHOLD, DSNOT_VAR_POWER, DSNOT_SKIP,
      MOE_CALIBRATION, MIN_EXPERT_TOKENS, SCORING_TASK_MB,
      GPUS_PER_TASK, GPUS_PER_EXECUTOR, GPU_DISCOVERY_SCRIPT, GPU_VENDOR,
      OVERWRITE);

  /**
   * The keys every job that reads a model and calibrates on it shares (prune, and any later
   * command such as shrink): a command declares them with the same names, help and parsing.
   */
  public static final List<OptionKey> COMMON = List.of(MODEL, OUT, CALIB, NSAMPLES, SEQLEN, SEED, OVERWRITE);

  private PruneKeys() {}

  /** The key of that name, if any. */
  public static java.util.Optional<OptionKey> named(String name) {
    return ALL.stream().filter(key -> key.name().equals(name)).findFirst();
  }

  private static OptionKey required(String name, String label, String description) {
    return new OptionKey(name, label, "", description, OptionKey.Kind.REQUIRED, false);
  }

  private static OptionKey value(String name, String label, Object defaultValue, String description, boolean fromConf) {
    return new OptionKey(name, label, String.valueOf(defaultValue), description, OptionKey.Kind.VALUE, fromConf);
  }

  private static OptionKey flag(String name, String description) {
    return new OptionKey(name, "", "", description, OptionKey.Kind.FLAG, false);
  }
}
