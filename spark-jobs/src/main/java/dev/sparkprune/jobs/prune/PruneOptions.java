package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.plan.CalibrationSettings;
import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.gradient.GradientNorm;
import dev.sparkprune.jobs.options.OptionValues;
import dev.sparkprune.jobs.options.Rule;
import dev.sparkprune.jobs.options.Rules;
import dev.sparkprune.jobs.options.Sources;
import dev.sparkprune.jobs.output.OutputGuard;
import dev.sparkprune.jobs.output.OutputRequest;
import dev.sparkprune.jobs.plan.MemoryPlan;
import dev.sparkprune.jobs.prune.plan.PruneRules;
import dev.sparkprune.jobs.prune.score.GradientSettings;
import dev.sparkprune.jobs.prune.score.ScoringSettings;
import dev.sparkprune.jobs.prune.score.StatisticsSettings;
import dev.sparkprune.jobs.spark.GpuRequest;
import dev.sparkprune.jobs.spark.GpuScheduling;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * The resolved settings of one prune run, checked once on the driver: each value by its key
 * ({@link PruneKeys}), then the combinations by {@link #RULES}. Defaults follow the reference
 * implementations: 128 calibration samples of 2048 tokens, seed 0, sequential mode.
 */
public final class PruneOptions implements Serializable {
  private static final long serialVersionUID = 1L;

  /** How calibration statistics relate to pruning. */
  public enum Mode {
    /** Block by block on the pruned model's activations, as the references do. */
    SEQUENTIAL,
    /** Statistics of the dense model for every block from one pass; faster, slightly worse. */
    ONE_SHOT
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

    boolean isGlobal() {
      return this == GLOBAL || this == LAMP;
    }

    String id() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  private static final long SCORING_TASK_BYTES_DEFAULT = (long) PruneKeys.SCORING_TASK_MB_DEFAULT << 20;

  /**
   * Most calibration tokens (--nsamples x --seqlen) a run may ask for: 2^26 ids take 256 MB on
   * the driver and 256x the references' 128 x 2048; beyond it a typo would end in an
   * OutOfMemoryError minutes later instead of an error now.
   */
  public static final long MAX_CALIBRATION_TOKENS = 1L << 26;

  /**
   * The rules over several settings, in the order they are checked; each message names the keys
   * as the user set them (option or conf key). Single values are checked by their keys.
   */
  public static final Rules<PruneOptions> RULES = Rules.of(
      Rule.of("per-layer rules need the uniform allocation",
          o -> o.config == null || o.allocation == Allocation.UNIFORM,
          (o, k) -> String.format("%s rules set per-layer targets: use them with %s uniform", k.of(PruneKeys.CONFIG), k.of(PruneKeys.ALLOCATION))),
      Rule.of("a layer group is Wanda's",
          o -> o.wandaGroup == Wanda.Group.ROW || o.method == PruningMethod.WANDA,
          (o, k) -> String.format("%s layer is Wanda's per-layer comparison group: use it with %s wanda", k.of(PruneKeys.GROUP),
              k.of(PruneKeys.METHOD))),
      Rule.of("global allocations compare magnitude or layer-wise Wanda scores",
          o -> !o.allocation.isGlobal() || o.method == PruningMethod.MAGNITUDE || o.allocation == Allocation.GLOBAL && o.layerWanda(),
          (o, k) -> String.format("%s %s compares scores across layers: use it with %s magnitude (or, for global, %s wanda %s layer)",
              k.of(PruneKeys.ALLOCATION), o.allocation.id(), k.of(PruneKeys.METHOD), k.of(PruneKeys.METHOD), k.of(PruneKeys.GROUP))),
      Rule.of("global Wanda scores come from calibration text",
          o -> !(o.allocation.isGlobal() && o.layerWanda()) || o.statistics == null && o.calibration != null,
          (o, k) -> String.format("%s global with Wanda scores needs %s: the scores come from a dense calibration pass",
              k.of(PruneKeys.ALLOCATION), k.of(PruneKeys.CALIB))),
      Rule.of("global allocations need an unstructured target",
          o -> !o.allocation.isGlobal() || !o.target.isStructured(),
          (o, k) -> String.format("%s %s needs an unstructured %s, not a pattern", k.of(PruneKeys.ALLOCATION), o.allocation.id(),
              k.of(PruneKeys.SPARSITY))),
      Rule.of("OWL measures outliers on calibration text",
          o -> o.allocation != Allocation.OWL
              || o.statistics == null && (o.method.needsCalibration() || o.method.needsGradient() && o.calibration != null),
          (o, k) -> String.format("%s owl measures outliers of Wanda scores on calibration text: use it with %s and a calibrated method",
              k.of(PruneKeys.ALLOCATION), k.of(PruneKeys.CALIB))),
      Rule.checkedBy("the update and refinement fit the method",
          o -> o.refinement.checkMethod(o.method), PruneKeys.METHOD, PruneKeys.UPDATE, PruneKeys.REFINE),
      Rule.of("global allocations have no update or refinement yet",
          o -> !o.allocation.isGlobal() || o.refinement.equals(Refinement.NONE),
          (o, k) -> String.format("%s and %s are not supported with %s %s yet: use uniform or owl", k.of(PruneKeys.UPDATE),
              k.of(PruneKeys.REFINE), k.of(PruneKeys.ALLOCATION), o.allocation.id())),
      Rule.of("updates and refinement work from calibration statistics",
          o -> !o.refinement.needsCalibration() || o.calibration != null || o.statistics != null,
          (o, k) -> String.format("Missing %s: %s admm and %s dsnot work from calibration statistics", k.of(PruneKeys.CALIB),
              k.of(PruneKeys.UPDATE), k.of(PruneKeys.REFINE))),
      Rule.of("saving statistics needs one-shot",
          o -> !o.saveStatistics || o.mode == Mode.ONE_SHOT,
          (o, k) -> String.format("%s needs %s one-shot: sequential statistics depend on how earlier blocks were pruned",
              k.of(PruneKeys.SAVE_STATS), k.of(PruneKeys.MODE))),
      Rule.of("saved statistics are one-shot",
          o -> o.statistics == null || o.mode == Mode.ONE_SHOT,
          (o, k) -> String.format("%s needs %s one-shot: saved statistics are those of the dense model", k.of(PruneKeys.STATS),
              k.of(PruneKeys.MODE))),
      Rule.of("saved statistics or saving them",
          o -> o.statistics == null || !o.saveStatistics,
          (o, k) -> String.format("Give either %s or %s, not both", k.of(PruneKeys.STATS), k.of(PruneKeys.SAVE_STATS))),
      Rule.of("saved gradients or saving them",
          o -> o.gradients == null || !o.saveGradients,
          (o, k) -> String.format("Give either %s or %s, not both", k.of(PruneKeys.GRADS), k.of(PruneKeys.SAVE_GRADS))),
      Rule.of("gradient sets are the gradient methods'",
          o -> o.gradients == null && !o.saveGradients || o.method.needsGradient() || o.config != null,
          (o, k) -> String.format("%s is for the methods that score with gradients: use it with %s gblm or prunerzero",
              o.gradients != null ? k.of(PruneKeys.GRADS) : k.of(PruneKeys.SAVE_GRADS), k.of(PruneKeys.METHOD))),
      Rule.of("the gradient norm is the gradient methods'",
          o -> o.gradientNorm == GradientNorm.L2 || o.method.needsGradient() || o.config != null,
          (o, k) -> String.format("%s %s sets the gradient statistic of gblm and prunerzero: use it with %s gblm or prunerzero",
              k.of(PruneKeys.GRADIENT_NORM), o.gradientNorm.id(), k.of(PruneKeys.METHOD))),
      Rule.of("saved statistics hold no gradients",
          o -> o.statistics == null || !o.method.needsGradient() || o.gradients != null,
          (o, k) -> String.format("Cannot use %s %s with %s %s alone: statistics saved by %s come from a forward-only run and hold no"
              + " gradients; add %s URI (saved by %s), or calibrate with %s instead", k.of(PruneKeys.STATS), o.statistics,
              k.of(PruneKeys.METHOD), o.method.displayName(), k.of(PruneKeys.SAVE_STATS), k.of(PruneKeys.GRADS), k.of(PruneKeys.SAVE_GRADS),
              k.of(PruneKeys.CALIB))),
      Rule.of("gradients come from calibration text or a saved set",
          o -> !o.method.needsGradient() || o.calibration != null || o.gradients != null || o.config != null,
          (o, k) -> String.format("Missing %s for %s %s: its gradients come from a backward pass over calibration text (or give %s)",
              k.of(PruneKeys.CALIB), k.of(PruneKeys.METHOD), o.method.displayName(), k.of(PruneKeys.GRADS))),
      Rule.of("calibration tokens fit the driver",
          o -> (long) o.nsamples * o.seqlen <= MAX_CALIBRATION_TOKENS,
          (o, k) -> String.format(Locale.ROOT,
              "Invalid %s %d: %d samples x %s %d = %d calibration tokens, over the limit of %d; use fewer or shorter samples",
              k.of(PruneKeys.NSAMPLES), o.nsamples, o.nsamples, k.of(PruneKeys.SEQLEN), o.seqlen, (long) o.nsamples * o.seqlen,
              MAX_CALIBRATION_TOKENS)),
      Rule.of("executors have the GPUs a task asks for",
          o -> o.gpusPerExecutor == 0 || o.gpusPerExecutor >= o.gpusPerTask,
          (o, k) -> String.format("Invalid %s %d: less than %s %s", k.of(PruneKeys.GPUS_PER_EXECUTOR), o.gpusPerExecutor,
              k.of(PruneKeys.GPUS_PER_TASK), o.gpusPerTask)),
      Rule.of("calibrated methods need calibration text",
          o -> !o.method.needsCalibration() || o.calibration != null || o.statistics != null || o.config != null,
          (o, k) -> String.format("Missing %s for %s %s: it scores layers from calibration activations", k.of(PruneKeys.CALIB),
              k.of(PruneKeys.METHOD), o.method.displayName())));

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
  private final GradientNorm gradientNorm;
  private final boolean saveGradients;
  private final String gradients;
  private final Allocation allocation;
  private final double minKeep;
  private final String config;
  private final String configFingerprint;
  private final double owlLambda;
  private final double owlM;
  private final Wanda.Group wandaGroup;
  private final Refinement refinement;
  private final double gpusPerTask;
  private final int gpusPerExecutor;
  private final String gpuDiscoveryScript;
  private final String gpuVendor;
  private final InputHook.ExpertInputs moeCalibration;
  private final int minExpertTokens;
  private final long scoringTaskBytes;
  /** 0: derived from executor memory (see jobs.plan.PlanSettings). */
  private final long expertTaskBytes;
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
    this.mode = Objects.requireNonNull(builder.mode, "mode is null");
    this.partitions = builder.partitions;
    this.saveStatistics = builder.saveStatistics;
    this.statistics = builder.statistics;
    this.gradientNorm = Objects.requireNonNull(builder.gradientNorm, "gradientNorm is null");
    this.saveGradients = builder.saveGradients;
    this.gradients = builder.gradients;
    this.allocation = Objects.requireNonNull(builder.allocation, "allocation is null");
    this.minKeep = builder.minKeep;
    this.config = builder.config;
    this.configFingerprint = Objects.requireNonNull(builder.configFingerprint, "configFingerprint is null");
    this.owlLambda = builder.owlLambda;
    this.owlM = builder.owlM;
    this.wandaGroup = Objects.requireNonNull(builder.wandaGroup, "wandaGroup is null");
    this.refinement = Objects.requireNonNull(builder.refinement, "refinement is null");
    this.gpusPerTask = builder.gpusPerTask;
    this.gpusPerExecutor = builder.gpusPerExecutor;
    this.gpuDiscoveryScript = builder.gpuDiscoveryScript;
    this.gpuVendor = builder.gpuVendor;
    this.moeCalibration = Objects.requireNonNull(builder.moeCalibration, "moeCalibration is null");
    this.minExpertTokens = builder.minExpertTokens;
    this.scoringTaskBytes = builder.scoringTaskBytes;
    this.expertTaskBytes = builder.expertTaskBytes;
    // Whether --out may name --model in any spelling is checked against the file system: OutputGuard.
    this.overwrite = builder.overwrite;
    checkValues(builder.sources);
    RULES.check(this, builder.sources);
  }

  /** Each value made in code as its key checks a parsed one. */
  private void checkValues(Sources sources) {
    OptionValues.check(PruneKeys.NSAMPLES, nsamples, sources);
    OptionValues.check(PruneKeys.SEQLEN, seqlen, sources);
    if (partitions != 0) {
      OptionValues.check(PruneKeys.PARTITIONS, partitions, sources);
    }
    OptionValues.check(PruneKeys.MIN_KEEP, minKeep, sources);
    OptionValues.check(PruneKeys.OWL_LAMBDA, owlLambda, sources);
    OptionValues.check(PruneKeys.OWL_M, owlM, sources);
    OptionValues.check(PruneKeys.MIN_EXPERT_TOKENS, minExpertTokens, sources);
    ValidationException.check(scoringTaskBytes > 0, "Invalid %s: must be positive", sources.of(PruneKeys.SCORING_TASK_MB));
    ValidationException.check(expertTaskBytes >= 0, "Invalid %s: must be positive", sources.of(PruneKeys.EXPERT_TASK_MB));
    OptionValues.check(PruneKeys.GPUS_PER_TASK, gpusPerTask, sources);
    if (gpusPerExecutor != 0) {
      OptionValues.check(PruneKeys.GPUS_PER_EXECUTOR, gpusPerExecutor, sources);
    }
  }

  private boolean layerWanda() {
    return method == PruningMethod.WANDA && wandaGroup == Wanda.Group.MATRIX;
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
  public Wanda.Group wandaGroup() {
    return wandaGroup;
  }

  /** DSnoT and the ADMM update after each layer's mask; {@link Refinement#NONE} by default. */
  public Refinement refinement() {
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

  /** The output folder and the inputs it must keep clear of: --model, --calib, --stats, --grads, --config. */
  public OutputRequest output() {
    java.util.Map<String, String> inputs = new java.util.LinkedHashMap<>();
    inputs.put("--model", model);
    calibration().ifPresent(location -> inputs.put("--calib", location));
    statistics().ifPresent(location -> inputs.put("--stats", location));
    gradients().ifPresent(location -> inputs.put("--grads", location));
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

  /** G's accumulation for GBLM and Pruner-Zero: l2 (the authors' scripts') or l1. */
  public GradientNorm gradientNorm() {
    return gradientNorm;
  }

  /** Whether to keep the dense model's gradient statistics under {@code <out>/grads} for later runs. */
  public boolean saveGradients() {
    return saveGradients;
  }

  /** Gradient statistics saved by an earlier run (--save-grads), used instead of the backward pass. */
  public Optional<String> gradients() {
    return Optional.ofNullable(gradients);
  }

  /** Where the gradient methods' statistics come from and go. */
  public GradientSettings gradientSettings() {
    return new GradientSettings(gradientNorm, gradients == null ? "" : gradients, saveGradients);
  }

  /** Where the calibration windows come from and how many (the chunk rule is {@link CalibrationSource}'s). */
  public CalibrationSettings calibrationSettings() {
    return new CalibrationSettings(calibration == null ? "" : calibration, nsamples, seqlen, seed, partitions);
  }

  /** What the scoring tasks read. */
  public ScoringSettings scoring() {
    return new ScoringSettings(wandaGroup, refinement, minExpertTokens, scoringTaskBytes);
  }

  /** Where the scoring stage's statistics come from and go. */
  public StatisticsSettings statisticsSettings() {
    return new StatisticsSettings(mode == Mode.SEQUENTIAL, moeCalibration, statistics == null ? "" : statistics, saveStatistics, expertTaskBytes);
  }

  /** The settings as report.json's "configuration" lists them, in order; {@code master} is the Spark master the run used. */
  public Map<String, Object> reportConfiguration(String master) {
    Map<String, Object> configuration = new LinkedHashMap<>();
    configuration.put("model", model);
    configuration.put("out", out);
    configuration.put("method", method.displayName());
    configuration.put("target", target.toString());
    configuration.put("mode", mode.name().toLowerCase(Locale.ROOT));
    configuration.put("allocation", allocation.id());
    calibration().ifPresent(location -> configuration.put("calibration", location));
    configuration.put("nsamples", nsamples);
    configuration.put("seqlen", seqlen);
    configuration.put("seed", seed);
    configuration.put("chunk_size", CalibrationSource.chunkSize(nsamples));
    configuration.put("master", master);
    configuration.put("moe_calibration", moeCalibration.name().toLowerCase(Locale.ROOT));
    configuration.put("min_expert_tokens", minExpertTokens);
    configuration.put("scoring_task_bytes", scoringTaskBytes);
    configuration.put("expert_task_bytes", expertTaskBytes);
    configuration.put("settings_key", settingsKey());
    if (!refinement.equals(Refinement.NONE)) {
      configuration.put("refinement", refinement.toString());
    }
    if (method.needsGradient() || gradients != null || saveGradients) {
      configuration.put("gradient_norm", gradientNorm.id());
      gradients().ifPresent(location -> configuration.put("grads", location));
    }
    return configuration;
  }

  /** The GPUs the model stages ask for. */
  public GpuRequest gpus() {
    return new GpuRequest(gpusPerTask, gpusPerExecutor, gpuDiscoveryScript == null ? "" : gpuDiscoveryScript,
        gpuVendor == null ? "" : gpuVendor);
  }

  /** Which tokens a routed expert's calibration statistics come from: those routed to it, or all. */
  public InputHook.ExpertInputs moeCalibration() {
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

  /** The --expert-task-mb budget in bytes; 0 when derived from executor memory. */
  public long expertTaskBytes() {
    return expertTaskBytes;
  }

  /** What the memory plan ({@link MemoryPlan}) reads of these options. */
  public MemoryPlan.Settings memorySettings() {
    return new MemoryPlan.Settings(nsamples, seqlen, method, scoringTaskBytes);
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
        + (moeCalibration == InputHook.ExpertInputs.ROUTED && minExpertTokens == PruneKeys.MIN_EXPERT_TOKENS_DEFAULT
            ? "" : "|moe=" + moeCalibration.name() + "/" + minExpertTokens)
        // Refinement appended only when set, so keys of runs without it stay as they were.
        + (refinement.equals(Refinement.NONE) ? "" : "|" + refinement)
        // Gradients only for runs that use them, so keys of the other runs stay as they were.
        + (method.needsGradient() || gradients != null
            ? "|gradients=" + gradientNorm.id() + (gradients == null ? "" : "@" + gradients) : "");
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
    private int nsamples = PruneKeys.NSAMPLES_DEFAULT;
    private int seqlen = PruneKeys.SEQLEN_DEFAULT;
    private long seed = PruneKeys.SEED_DEFAULT;
    private Mode mode = Mode.SEQUENTIAL;
    private int partitions;
    private boolean saveStatistics;
    private String statistics;
    private GradientNorm gradientNorm = GradientNorm.L2;
    private boolean saveGradients;
    private String gradients;
    private Allocation allocation = Allocation.UNIFORM;
    private double minKeep = PruneKeys.MIN_KEEP_DEFAULT;
    private String config;
    private String configFingerprint = "";
    private double owlLambda = PruneKeys.OWL_LAMBDA_DEFAULT;
    private double owlM = PruneKeys.OWL_M_DEFAULT;
    private Wanda.Group wandaGroup = Wanda.Group.ROW;
    private Refinement refinement = Refinement.NONE;
    private double gpusPerTask;
    private int gpusPerExecutor;
    private String gpuDiscoveryScript;
    private String gpuVendor;
    private InputHook.ExpertInputs moeCalibration = InputHook.ExpertInputs.ROUTED;
    private int minExpertTokens = PruneKeys.MIN_EXPERT_TOKENS_DEFAULT;
    private long scoringTaskBytes = SCORING_TASK_BYTES_DEFAULT;
    private long expertTaskBytes;

    /** How messages name each key: by option, unless the resolver says a value came from the conf. */
    private Sources sources = Sources.OPTIONS;

    private Builder() {}

    /** Where the values came from, for the messages of the checks (the resolver's {@link OptionValues}). */
    public Builder sources(Sources value) {
      this.sources = Objects.requireNonNull(value, "sources is null");
      return this;
    }

    public Builder moeCalibration(InputHook.ExpertInputs value) {
      this.moeCalibration = value;
      return this;
    }

    public Builder minExpertTokens(int value) {
      this.minExpertTokens = value;
      return this;
    }

    /** 0: derived from executor memory. */
    public Builder expertTaskBytes(long value) {
      this.expertTaskBytes = value;
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

    public Builder wandaGroup(Wanda.Group value) {
      this.wandaGroup = value;
      return this;
    }

    public Builder refinement(Refinement value) {
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

    public Builder gradientNorm(GradientNorm value) {
      this.gradientNorm = value;
      return this;
    }

    public Builder saveGradients(boolean value) {
      this.saveGradients = value;
      return this;
    }

    public Builder gradients(String value) {
      this.gradients = value;
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
