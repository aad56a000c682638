package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.options.OptionValues;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.Admm;
import dev.sparkprune.scoring.methods.Dsnot;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Turns the values a user gave into validated {@link PruneOptions}, once, on the driver, through
 * the one precedence chain of {@link OptionValues}: the CLI option or manifest column, then
 * {@code spark.sparkprune.<key>} for tuning keys, then the default in {@link PruneKeys}.
 *
 * Three defaults depend on other values: {@code --stats} alone means {@code --mode one-shot};
 * gradual ADMM's steps default to at most the iterations; pre-tokenized calibration rows give
 * {@code seqlen} their length when no source sets it, and the rules file's content hash joins
 * the settings key. Every bad value is a one-line {@link ValidationException} naming where it
 * came from.
 */
public final class PruneOptionsResolver {
  /** What resolving reads of the inputs, so that resolving itself needs no file system. */
  public interface Inputs {
    /** The length of the first pre-tokenized row of a calibration source; empty for text. */
    OptionalInt tokenRowLength(String calibration) throws IOException;

    /** SHA-256 of a small file's content; empty when it does not exist (the job reports that). */
    Optional<String> fingerprint(String location) throws IOException;

    /** The given settings with their locations qualified on the driver ({@link dev.sparkprune.jobs.options.Locations}); as given by default. */
    default Map<String, String> qualify(Map<String, String> given) {
      return given;
    }
  }

  private final Map<String, String> conf;
  private final Inputs inputs;

  /** @param conf the {@code spark.sparkprune.*} entries of the Spark conf (others are ignored) */
  public PruneOptionsResolver(Map<String, String> conf, Inputs inputs) {
    this.conf = Map.copyOf(Objects.requireNonNull(conf, "conf is null"));
    this.inputs = Objects.requireNonNull(inputs, "inputs is null");
  }

  /** A resolver on a Spark conf's {@code spark.sparkprune.*} entries and a Hadoop file system. */
  public static PruneOptionsResolver on(org.apache.spark.SparkConf conf, dev.sparkprune.tensorio.io.HadoopFileIO io) {
    return new PruneOptionsResolver(OptionValues.confEntries(conf), new HadoopInputs(io));
  }

  /**
   * Resolves the given values (key name to text; a flag's text is true or false).
   *
   * @throws ValidationException for an unknown key or any bad or conflicting value
   */
  public PruneOptions resolve(Map<String, String> given) throws IOException {
    OptionValues.checkKnown(given, PruneKeys.ALL, "prune");
    OptionValues values = new OptionValues(inputs.qualify(given), conf, PruneKeys.DEPRECATED_CONF);
    PruneOptions.Builder builder = builder(values);
    PruneOptions options = builder.build();
    // Only valid settings reach the inputs: a typo is reported before any file is read.
    boolean inferred = false;
    if (!values.isSet(PruneKeys.SEQLEN) && options.calibration().isPresent()) {
      OptionalInt length = inputs.tokenRowLength(options.calibration().get());
      if (length.isPresent()) {
        // Named as the rows' fault: the user gave no --seqlen.
        ValidationException.check(length.getAsInt() >= 2,
            "Invalid calibration rows %s: the first input_ids row holds %d ids; a sample needs at least 2 tokens",
            options.calibration().get(), length.getAsInt());
        builder.seqlen(length.getAsInt());
        inferred = true;
      }
    }
    if (options.config().isPresent()) {
      Optional<String> fingerprint = inputs.fingerprint(options.config().get());
      if (fingerprint.isPresent()) {
        builder.configFingerprint(fingerprint.get());
        inferred = true;
      }
    }
    return inferred ? builder.build() : options;
  }

  private static PruneOptions.Builder builder(OptionValues values) {
    PruneOptions.Builder builder = PruneOptions.builder().sources(values);
    // The method first: a missing or unknown method is the first thing to fix.
    builder.method(values.get(PruneKeys.METHOD));
    values.checkExclusive(PruneKeys.SPARSITY, PruneKeys.PATTERN);
    SparsityTarget target = values.value(PruneKeys.PATTERN).orElseGet(() -> values.get(PruneKeys.SPARSITY));
    Optional<String> statistics = values.value(PruneKeys.STATS);
    // Saved statistics are dense ones: --stats alone means one-shot.
    PruneOptions.Mode mode = values.value(PruneKeys.MODE)
        .orElse(statistics.isPresent() ? PruneOptions.Mode.ONE_SHOT : values.get(PruneKeys.MODE));
    return builder
        .model(values.get(PruneKeys.MODEL))
        .out(values.get(PruneKeys.OUT))
        .target(target)
        .calibration(values.value(PruneKeys.CALIB).orElse(null))
        .nsamples(values.get(PruneKeys.NSAMPLES))
        .seqlen(values.get(PruneKeys.SEQLEN))
        .seed(values.get(PruneKeys.SEED))
        .mode(mode)
        .partitions(values.value(PruneKeys.PARTITIONS).orElse(0))
        .saveStatistics(values.get(PruneKeys.SAVE_STATS))
        .statistics(statistics.orElse(null))
        .gradientNorm(values.get(PruneKeys.GRADIENT_NORM))
        .saveGradients(values.get(PruneKeys.SAVE_GRADS))
        .gradients(values.value(PruneKeys.GRADS).orElse(null))
        .config(values.value(PruneKeys.CONFIG).orElse(null))
        .wandaGroup(values.get(PruneKeys.GROUP))
        .allocation(values.get(PruneKeys.ALLOCATION))
        .minKeep(values.get(PruneKeys.MIN_KEEP))
        .owlLambda(values.get(PruneKeys.OWL_LAMBDA))
        .owlM(values.get(PruneKeys.OWL_M))
        .gpusPerTask(values.get(PruneKeys.GPUS_PER_TASK))
        .gpusPerExecutor(values.value(PruneKeys.GPUS_PER_EXECUTOR).orElse(0))
        .gpuDiscoveryScript(values.value(PruneKeys.GPU_DISCOVERY_SCRIPT).orElse(null))
        .gpuVendor(values.value(PruneKeys.GPU_VENDOR).orElse(null))
        .moeCalibration(values.get(PruneKeys.MOE_CALIBRATION))
        .minExpertTokens(values.get(PruneKeys.MIN_EXPERT_TOKENS))
        .scoringTaskBytes((long) values.get(PruneKeys.SCORING_TASK_MB) << 20)
        .expertTaskBytes(values.value(PruneKeys.EXPERT_TASK_MB).map(mb -> (long) mb << 20).orElse(0L))
        .refinement(refinement(values))
        .overwrite(values.get(PruneKeys.OVERWRITE));
  }

  /** --update and --refine with their knobs; defaults are the reference implementations'. */
  private static Refinement refinement(OptionValues values) {
    int iterations = values.get(PruneKeys.ADMM_ITERATIONS);
    // Gradual steps default to the reference's 15, or fewer iterations when fewer are asked for.
    int gradualSteps = values.value(PruneKeys.ADMM_GRADUAL_STEPS).orElse(Math.min(iterations, Admm.DEFAULTS.gradualSteps()));
    Admm.Settings admm = new Admm.Settings(iterations, values.get(PruneKeys.ADMM_PERCDAMP), values.get(PruneKeys.ADMM_RHO), gradualSteps);
    Dsnot.Settings dsnot = new Dsnot.Settings(
        values.get(PruneKeys.DSNOT_CYCLES), values.get(PruneKeys.DSNOT_THRESHOLD), values.get(PruneKeys.DSNOT_VAR_POWER));
    return new Refinement(values.get(PruneKeys.UPDATE), admm, values.get(PruneKeys.REFINE), dsnot, values.get(PruneKeys.DSNOT_SKIP));
  }
}
