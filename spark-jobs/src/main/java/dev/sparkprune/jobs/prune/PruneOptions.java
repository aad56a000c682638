package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.spark.GpuScheduling;
import dev.sparkprune.jobs.output.OutputGuard;
import dev.sparkprune.jobs.output.OutputRequest;
import dev.sparkprune.jobs.prune.plan.PruneRules;
import dev.sparkprune.jobs.prune.PruneKeys;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/**
 * The resolved settings of one prune run, validated once on the driver. Defaults follow the
 * reference implementations: 128 calibration samples of 2048 tokens, seed 0, sequential mode.
 */
public final class PruneOptions implements Serializable {
  private static final long serialVersionUID = 1L;

  /** How calibration statistics relate to pruning. */
  public enum Mode {
    /** Block by block on the pruned model's activations, as the references do. */
    SEQUENTIAL,
    /** Statistics of the dense model for every block from one pass; faster, slightly worse. */
    ONE_SHOT;

    /** "sequential" or "one-shot", any case. */
    public static Mode parse(String text) {
      switch (text.toLowerCase(Locale.ROOT)) {
        case "sequential":
          return SEQUENTIAL;
        case "one-shot":
          return ONE_SHOT;
        default:
          throw new ValidationException("Invalid --mode " + text + ": use sequential or one-shot");
      }
    }
  }

  /** How a model-level sparsity becomes per-layer decisions. */
  public enum Allocation {
    /** Every linear at the target. */
    UNIFORM,
    /** One magnitude threshold over all linears. */
    GLOBAL,
    /** One threshold over all linears' LAMP scores. */
    LAMP,
    /** Outlier-weighted layerwise sparsity: per-block targets from a dense pass. */
    OWL;

    /** uniform, global, lamp or owl, any case. */
    public static Allocation parse(String text) {
      for (Allocation allocation : values()) {
        if (allocation.name().equalsIgnoreCase(text)) {
          return allocation;
        }
      }
      throw new ValidationException("Invalid --allocation " + text + ": use uniform, global, lamp or owl");
    }
  }

  // Defaults live with their keys in PruneKeys, the one holder of the prune job's settings.
  public static final double OWL_LAMBDA_DEFAULT = PruneKeys.OWL_LAMBDA_DEFAULT;

  public static final double OWL_M_DEFAULT = PruneKeys.OWL_M_DEFAULT;

  public static final double MIN_KEEP_DEFAULT = PruneKeys.MIN_KEEP_DEFAULT;

  public static final int MIN_EXPERT_TOKENS_DEFAULT = PruneKeys.MIN_EXPERT_TOKENS_DEFAULT;

  public static final long SCORING_TASK_BYTES_DEFAULT = (long) PruneKeys.SCORING_TASK_MB_DEFAULT << 20;

  public static final int NSAMPLES_DEFAULT = PruneKeys.NSAMPLES_DEFAULT;
  public static final int SEQLEN_DEFAULT = PruneKeys.SEQLEN_DEFAULT;
  public static final long SEED_DEFAULT = PruneKeys.SEED_DEFAULT;

  /**
   * Most calibration tokens (--nsamples x --seqlen) a run may ask for: 2^26 ids take 256 MB on
   * the driver and 256x the references' 128 x 2048; beyond it a typo would end in an
   * OutOfMemoryError minutes later instead of an error now.
   */
  public static final long MAX_CALIBRATION_TOKENS = 1L << 26;

  private final String model;
  private final String out;
  private final PruningMethod method;
  private final SparsityTarget target;
  private final String calibration;
  private final int nsamples;
  private final int seqlen;
  private final long seed;
  private final Mode mode;
  private final int partitions;
  private final boolean saveStatistics;
  private final String statistics;
  private final Allocation allocation;
  private final double minKeep;
  private final String config;
  private final String configFingerprint;
  private final double owlLambda;
  private final double owlM;
  private final dev.sparkprune.scoring.methods.Wanda.Group wandaGroup;
  private final dev.sparkprune.scoring.methods.Refinement refinement;
  private final double gpusPerTask;
  private final int gpusPerExecutor;
  private final String gpuDiscoveryScript;
  private final String gpuVendor;
  private final dev.sparkprune.scoring.model.InputHook.ExpertInputs moeCalibration;
  private final int minExpertTokens;
  private final long scoringTaskBytes;
  private final boolean overwrite;

  private PruneOptions(Builder builder) {
    this.model = Objects.requireNonNull(builder.model, "model is null");
    this.out = Objects.requireNonNull(builder.out, "out is null");
    this.method = Objects.requireNonNull(builder.method, "method is null");
    this.target = Objects.requireNonNull(builder.target, "target is null");
    this.calibration = builder.calibration;
    this.nsamples = builder.nsamples;
    this.seqlen = builder.seqlen;
    this.seed = builder.seed;
    this.mode = builder.mode;
    this.partitions = builder.partitions;
    this.saveStatistics = builder.saveStatistics;
    this.statistics = builder.statistics;
    this.allocation = builder.allocation;
    this.minKeep = builder.minKeep;
    this.config = builder.config;
    this.configFingerprint = Objects.requireNonNull(builder.configFingerprint, "configFingerprint is null");
    this.moeCalibration = Objects.requireNonNull(builder.moeCalibration, "moeCalibration is null");
    this.minExpertTokens = builder.minExpertTokens;
    ValidationException.check(minExpertTokens >= 0, "Invalid --min-expert-tokens %d: must be 0 or more", minExpertTokens);
    this.scoringTaskBytes = builder.scoringTaskBytes;
    ValidationException.check(scoringTaskBytes > 0, "Invalid --scoring-task-mb: must be positive");
    ValidationException.check(
        config == null || allocation == Allocation.UNIFORM, "--config rules set per-layer targets: use them with --allocation uniform");
    ValidationException.check(minKeep >= 0 && minKeep < 1, "Invalid --min-keep %s: must be in [0, 1)", minKeep);
    this.wandaGroup = builder.wandaGroup;
    boolean layerWanda = method == dev.sparkprune.scoring.methods.PruningMethod.WANDA && wandaGroup == dev.sparkprune.scoring.methods.Wanda.Group.MATRIX;
    ValidationException.check(
        wandaGroup == dev.sparkprune.scoring.methods.Wanda.Group.ROW || method == dev.sparkprune.scoring.methods.PruningMethod.WANDA,
        "--group layer is Wanda's per-layer comparison group: use it with --method wanda");
    boolean global = allocation == Allocation.GLOBAL || allocation == Allocation.LAMP;
    ValidationException.check(
        !global || method == dev.sparkprune.scoring.methods.PruningMethod.MAGNITUDE || allocation == Allocation.GLOBAL && layerWanda,
        "--allocation %s compares scores across layers: use it with --method magnitude (or, for global, --method wanda --group layer)",
        allocation.name().toLowerCase(Locale.ROOT));
    ValidationException.check(
        !(global && layerWanda) || statistics == null && calibration != null,
        "--allocation global with Wanda scores needs --calib: the scores come from a dense calibration pass");
    ValidationException.check(
        !global || !target.isStructured(),
        "--allocation %s needs an unstructured --sparsity, not a pattern",
        allocation.name().toLowerCase(Locale.ROOT));
    ValidationException.check(
        allocation != Allocation.OWL || method.needsCalibration() && statistics == null,
        "--allocation owl measures outliers of Wanda scores on calibration text: use it with --calib and a calibrated method");
    this.refinement = Objects.requireNonNull(builder.refinement, "refinement is null");
    refinement.checkMethod(method);
    ValidationException.check(
        !global || refinement.equals(dev.sparkprune.scoring.methods.Refinement.NONE),
        "--update and --refine are not supported with --allocation %s yet: use uniform or owl",
        allocation.name().toLowerCase(Locale.ROOT));
    ValidationException.check(
        !refinement.needsCalibration() || calibration != null || statistics != null,
        "Missing --calib: --update admm and --refine dsnot work from calibration statistics");
    this.owlLambda = builder.owlLambda;
    this.owlM = builder.owlM;
    ValidationException.check(owlLambda > 0 && owlLambda < 0.5, "Invalid --owl-lambda %s: must be in (0, 0.5)", owlLambda);
    ValidationException.check(owlM > 0, "Invalid --owl-m %s: must be positive", owlM);
    ValidationException.check(
        !saveStatistics || mode == Mode.ONE_SHOT,
        "--save-stats needs --mode one-shot: sequential statistics depend on how earlier blocks were pruned");
    ValidationException.check(
        statistics == null || mode == Mode.ONE_SHOT, "--stats needs --mode one-shot: saved statistics are those of the dense model");
    ValidationException.check(statistics == null || !saveStatistics, "Give either --stats or --save-stats, not both");
    ValidationException.check(nsamples > 0, "Invalid --nsamples %d: must be positive", nsamples);
    ValidationException.check(seqlen >= 2, "Invalid --seqlen %d: must be at least 2", seqlen);
    ValidationException.check(
        (long) nsamples * seqlen <= MAX_CALIBRATION_TOKENS,
        "Invalid --nsamples %d: %d samples x --seqlen %d = %d calibration tokens, over the limit of %d; use fewer or shorter samples",
        nsamples, nsamples, seqlen, (long) nsamples * seqlen, MAX_CALIBRATION_TOKENS);
    ValidationException.check(partitions >= 0, "Invalid --partitions %d", partitions);
    this.gpusPerTask = builder.gpusPerTask;
    this.gpusPerExecutor = builder.gpusPerExecutor;
    this.gpuDiscoveryScript = builder.gpuDiscoveryScript;
    this.gpuVendor = builder.gpuVendor;
    ValidationException.check(
        gpusPerTask == 0 || GpuScheduling.isTaskAmount(gpusPerTask),
        "Invalid --gpus-per-task %s: use a whole number, or a fraction of at most 0.5 to share a GPU among tasks", gpusPerTask);
    ValidationException.check(gpusPerExecutor >= 0, "Invalid --gpus-per-executor %d", gpusPerExecutor);
    ValidationException.check(
        gpusPerExecutor == 0 || gpusPerExecutor >= gpusPerTask,
        "Invalid --gpus-per-executor %d: less than --gpus-per-task %s", gpusPerExecutor, gpusPerTask);
    ValidationException.check(
        !method.needsCalibration() || calibration != null || statistics != null || config != null,
        "Missing --calib for --method %s: it scores layers from calibration activations",
        method.displayName());
    // Whether --out may name --model in any spelling is checked against the file system: OutputGuard.
    this.overwrite = builder.overwrite;
  }

  public static Builder builder() {
    return new Builder();
  }

  public String model() {
    return model;
  }

  public String out() {
    return out;
  }

  public PruningMethod method() {
    return method;
  }

  public SparsityTarget target() {
    return target;
  }

  public Optional<String> calibration() {
    return Optional.ofNullable(calibration);
  }

  public int nsamples() {
    return nsamples;
  }

  public int seqlen() {
    return seqlen;
  }

  public long seed() {
    return seed;
  }

  public Mode mode() {
    return mode;
  }

  /** Requested calibration partitions; 0 means Spark's default parallelism. */
  public int partitions() {
    return partitions;
  }

  /** GPUs per calibration and scoring task; 0 means no GPU scheduling (see {@link GpuScheduling}). */
  public double gpusPerTask() {
    return gpusPerTask;
  }

  /** GPUs per executor of the GPU stages when they request new executors; 0 means the conf's or ceil(gpusPerTask). */
  public int gpusPerExecutor() {
    return gpusPerExecutor;
  }

  /** The GPU discovery script for new executors; empty means the conf's. */
  public Optional<String> gpuDiscoveryScript() {
    return Optional.ofNullable(gpuDiscoveryScript);
  }

  /** The GPU vendor for new executors (Kubernetes: nvidia.com); empty means the conf's. */
  public Optional<String> gpuVendor() {
    return Optional.ofNullable(gpuVendor);
  }

  /** Wanda's comparison group: each output row (the paper's), or the whole layer. */
  public dev.sparkprune.scoring.methods.Wanda.Group wandaGroup() {
    return wandaGroup;
  }

  /** DSnoT and the ADMM update after each layer's mask; {@link dev.sparkprune.scoring.methods.Refinement#NONE} by default. */
  public dev.sparkprune.scoring.methods.Refinement refinement() {
    return refinement;
  }

  public double owlLambda() {
    return owlLambda;
  }

  public double owlM() {
    return owlM;
  }

  /** A job config file of per-layer rules ({@link PruneRules}). */
  public Optional<String> config() {
    return Optional.ofNullable(config);
  }

  /** SHA-256 of the --config file's content, "" when unknown: part of {@link #settingsKey()}. */
  public String configFingerprint() {
    return configFingerprint;
  }

  public Allocation allocation() {
    return allocation;
  }

  /** The fraction of each layer a global allocation keeps at least. */
  public double minKeep() {
    return minKeep;
  }

  /**
   * Whether an existing {@code --out} that is not a sparkprune output may be replaced whole; never
   * one that is, contains or lies inside an input ({@link OutputGuard}).
   */
  public boolean overwrite() {
    return overwrite;
  }

  /** The output folder and the inputs it must keep clear of: --model, --calib, --stats, --config. */
  public OutputRequest output() {
    java.util.Map<String, String> inputs = new java.util.LinkedHashMap<>();
    inputs.put("--model", model);
    calibration().ifPresent(location -> inputs.put("--calib", location));
    statistics().ifPresent(location -> inputs.put("--stats", location));
    config().ifPresent(location -> inputs.put("--config", location));
    return new OutputRequest(out, overwrite, inputs);
  }

  /** Whether to keep the dense statistics under {@code <out>/stats} for later runs. */
  public boolean saveStatistics() {
    return saveStatistics;
  }

  /** Statistics saved by an earlier one-shot run, used instead of calibrating. */
  public Optional<String> statistics() {
    return Optional.ofNullable(statistics);
  }

  /**
   * Samples per calibration chunk: statistics are folded within a chunk and then chunk by chunk
   * in order, so results do not depend on how chunks are spread over partitions. At most 16
   * chunks, which also caps calibration parallelism.
   */
  public int chunkSize() {
    return Math.max(1, (nsamples + 15) / 16);
  }

  /** Which tokens a routed expert's calibration statistics come from: those routed to it, or all. */
  public dev.sparkprune.scoring.model.InputHook.ExpertInputs moeCalibration() {
    return moeCalibration;
  }

  /** Routed experts with fewer calibration tokens are pruned with magnitude (no statistics). */
  public int minExpertTokens() {
    return minExpertTokens;
  }

  /** The float-weight bytes a scoring task aims at; a larger linear is a task of its own. */
  public long scoringTaskBytes() {
    return scoringTaskBytes;
  }

  /** "routed" or "all", any case. */
  public static dev.sparkprune.scoring.model.InputHook.ExpertInputs parseMoeCalibration(String text) {
    for (dev.sparkprune.scoring.model.InputHook.ExpertInputs value : dev.sparkprune.scoring.model.InputHook.ExpertInputs.values()) {
      if (value.name().equalsIgnoreCase(text)) {
        return value;
      }
    }
    throw new ValidationException("Invalid --moe-calibration " + text + ": use routed or all");
  }

  /**
   * Every setting that changes the output, as one string: a batch rerun skips a model whose
   * committed report has the same key and model fingerprint.
   */
  public String settingsKey() {
    return String.join(
        "|",
        method.displayName(),
        target.toString(),
        mode.name(),
        allocation.name(),
        Double.toString(minKeep),
        wandaGroup.name(),
        Double.toString(owlLambda),
        Double.toString(owlM),
        calibration == null ? "" : calibration,
        statistics == null ? "" : statistics,
        // The rules' content, not only their path: a rules file edited in place changes the output.
        config == null ? "" : configFingerprint.isEmpty() ? config : config + "@sha256:" + configFingerprint,
        Integer.toString(nsamples),
        Integer.toString(seqlen),
        Long.toString(seed))
        // MoE settings only when they differ from the defaults, so earlier keys stay valid.
        + (moeCalibration == dev.sparkprune.scoring.model.InputHook.ExpertInputs.ROUTED && minExpertTokens == MIN_EXPERT_TOKENS_DEFAULT
            ? "" : "|moe=" + moeCalibration.name() + "/" + minExpertTokens)
        // Refinement appended only when set, so keys of runs without it stay as they were.
        + (refinement.equals(dev.sparkprune.scoring.methods.Refinement.NONE) ? "" : "|" + refinement);
  }

  @Override
  public String toString() {
    return String.format(
        Locale.ROOT,
        "method=%s target=%s mode=%s nsamples=%d seqlen=%d seed=%d",
        method.displayName(),
        target,
        mode.name().toLowerCase(Locale.ROOT),
        nsamples,
        seqlen,
        seed);
  }

  public static final class Builder {
    private String model;
    private String out;
    private PruningMethod method;
    private SparsityTarget target;
    private String calibration;
    private int nsamples = NSAMPLES_DEFAULT;
    private int seqlen = SEQLEN_DEFAULT;
    private long seed = SEED_DEFAULT;
    private Mode mode = Mode.SEQUENTIAL;
    private int partitions;
    private boolean saveStatistics;
    private String statistics;
    private Allocation allocation = Allocation.UNIFORM;
    private double minKeep = MIN_KEEP_DEFAULT;
    private String config;
    private String configFingerprint = "";
    private double owlLambda = OWL_LAMBDA_DEFAULT;
    private double owlM = OWL_M_DEFAULT;
    private dev.sparkprune.scoring.methods.Wanda.Group wandaGroup = dev.sparkprune.scoring.methods.Wanda.Group.ROW;
    private dev.sparkprune.scoring.methods.Refinement refinement = dev.sparkprune.scoring.methods.Refinement.NONE;
    private double gpusPerTask;
    private int gpusPerExecutor;
    private String gpuDiscoveryScript;
    private String gpuVendor;
    private dev.sparkprune.scoring.model.InputHook.ExpertInputs moeCalibration = dev.sparkprune.scoring.model.InputHook.ExpertInputs.ROUTED;
    private int minExpertTokens = MIN_EXPERT_TOKENS_DEFAULT;
    private long scoringTaskBytes = SCORING_TASK_BYTES_DEFAULT;

    private Builder() {}

    public Builder moeCalibration(dev.sparkprune.scoring.model.InputHook.ExpertInputs value) {
      this.moeCalibration = value;
      return this;
    }

    public Builder minExpertTokens(int value) {
      this.minExpertTokens = value;
      return this;
    }

    public Builder scoringTaskBytes(long value) {
      this.scoringTaskBytes = value;
      return this;
    }

    private boolean overwrite;

    public Builder overwrite(boolean value) {
      this.overwrite = value;
      return this;
    }

    public Builder gpusPerTask(double value) {
      this.gpusPerTask = value;
      return this;
    }

    public Builder gpusPerExecutor(int value) {
      this.gpusPerExecutor = value;
      return this;
    }

    public Builder gpuDiscoveryScript(String value) {
      this.gpuDiscoveryScript = value;
      return this;
    }

    public Builder gpuVendor(String value) {
      this.gpuVendor = value;
      return this;
    }

    public Builder wandaGroup(dev.sparkprune.scoring.methods.Wanda.Group value) {
      this.wandaGroup = value;
      return this;
    }

    public Builder refinement(dev.sparkprune.scoring.methods.Refinement value) {
      this.refinement = value;
      return this;
    }

    public Builder owlLambda(double value) {
      this.owlLambda = value;
      return this;
    }

    public Builder owlM(double value) {
      this.owlM = value;
      return this;
    }

    public Builder config(String value) {
      this.config = value;
      return this;
    }

    public Builder configFingerprint(String value) {
      this.configFingerprint = value;
      return this;
    }

    public Builder allocation(Allocation value) {
      this.allocation = value;
      return this;
    }

    public Builder minKeep(double value) {
      this.minKeep = value;
      return this;
    }

    public Builder saveStatistics(boolean value) {
      this.saveStatistics = value;
      return this;
    }

    public Builder statistics(String value) {
      this.statistics = value;
      return this;
    }

    public Builder model(String value) {
      this.model = value;
      return this;
    }

    public Builder out(String value) {
      this.out = value;
      return this;
    }

    public Builder method(PruningMethod value) {
      this.method = value;
      return this;
    }

    public Builder target(SparsityTarget value) {
      this.target = value;
      return this;
    }

    public Builder calibration(String value) {
      this.calibration = value;
      return this;
    }

    public Builder nsamples(int value) {
      this.nsamples = value;
      return this;
    }

    public Builder seqlen(int value) {
      this.seqlen = value;
      return this;
    }

    public Builder seed(long value) {
      this.seed = value;
      return this;
    }

    public Builder mode(Mode value) {
      this.mode = value;
      return this;
    }

    public Builder partitions(int value) {
      this.partitions = value;
      return this;
    }

    public PruneOptions build() {
      return new PruneOptions(this);
    }
  }
}
