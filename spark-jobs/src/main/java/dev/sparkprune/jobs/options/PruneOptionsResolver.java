package dev.sparkprune.jobs.options;

import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.Admm;
import dev.sparkprune.scoring.methods.Dsnot;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;

/**
 * Turns the values a user gave into validated {@link PruneOptions}, once, on the driver. Each
 * key's value comes from, in this order:
 *
 * <ol>
 *   <li>the CLI option or the manifest column of the same name ({@code --min-keep} / {@code min-keep});
 *   <li>the Spark conf {@code spark.sparkprune.<key>} (tuning keys only: {@link OptionKey#fromConf()});
 *   <li>the default in {@link PruneKeys}.
 * </ol>
 *
 * Two defaults depend on the inputs: pre-tokenized calibration rows give {@code seqlen} their
 * length when no source sets it, and the rules file's content hash joins the settings key.
 * Every bad value is a one-line {@link ValidationException} naming where it came from.
 */
public final class PruneOptionsResolver {
  /** What resolving reads of the inputs, so that resolving itself needs no file system. */
  public interface Inputs {
    /** The length of the first pre-tokenized row of a calibration source; empty for text. */
    OptionalInt tokenRowLength(String calibration) throws IOException;

    /** SHA-256 of a small file's content; empty when it does not exist (the job reports that). */
    Optional<String> fingerprint(String location) throws IOException;

    /** The given settings with their locations qualified on the driver ({@link Locations}); as given by default. */
    default Map<String, String> qualify(Map<String, String> given) {
      return given;
    }
  }

  /** Conf keys of earlier releases, still read after the current spelling. */
  private static final Map<String, String> LEGACY_CONF = Map.of("gpus-per-task", "spark.sparkprune.gpusPerTask");

  private final Map<String, String> conf;
  private final Inputs inputs;

  /** @param conf the {@code spark.sparkprune.*} entries of the Spark conf (others are ignored) */
  public PruneOptionsResolver(Map<String, String> conf, Inputs inputs) {
    this.conf = Map.copyOf(Objects.requireNonNull(conf, "conf is null"));
    this.inputs = Objects.requireNonNull(inputs, "inputs is null");
  }

  /** A resolver on a Spark conf's {@code spark.sparkprune.*} entries and a Hadoop file system. */
  public static PruneOptionsResolver on(org.apache.spark.SparkConf conf, dev.sparkprune.tensorio.io.HadoopFileIO io) {
    return new PruneOptionsResolver(confEntries(conf), new HadoopInputs(io));
  }

  /** The {@code spark.sparkprune.*} entries of a Spark conf. */
  public static Map<String, String> confEntries(org.apache.spark.SparkConf conf) {
    Map<String, String> entries = new TreeMap<>();
    for (scala.Tuple2<String, String> entry : conf.getAllWithPrefix(PruneKeys.CONF_PREFIX)) {
      entries.put(PruneKeys.CONF_PREFIX + entry._1(), entry._2());
    }
    return entries;
  }

  /**
   * Resolves the given values (key name to text; a flag's text is true or false).
   *
   * @throws ValidationException for an unknown key or any bad or conflicting value
   */
  public PruneOptions resolve(Map<String, String> given) throws IOException {
    KeyValues.checkKnown(given, PruneKeys.ALL, "prune");
    KeyValues values = new KeyValues(inputs.qualify(given), conf, LEGACY_CONF);
    PruneOptions.Builder builder = builder(values);
    PruneOptions options = values.build(builder::build);
    // Only valid settings reach the inputs: a typo is reported before any file is read.
    boolean inferred = false;
    if (values.find(PruneKeys.SEQLEN).isEmpty() && options.calibration().isPresent()) {
      OptionalInt length = inputs.tokenRowLength(options.calibration().get());
      if (length.isPresent()) {
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
    return inferred ? values.build(builder::build) : options;
  }

  private static PruneOptions.Builder builder(KeyValues values) {
    String method = values.require(PruneKeys.METHOD);
    Optional<KeyValues.Value> pattern = values.find(PruneKeys.PATTERN);
    Optional<KeyValues.Value> sparsity = values.find(PruneKeys.SPARSITY);
    ValidationException.check(pattern.isEmpty() || sparsity.isEmpty(), "Give either --sparsity or --pattern, not both");
    SparsityTarget target = pattern.isPresent()
        ? values.parse(PruneKeys.PATTERN, PruneOptionsResolver::pattern)
        : SparsityTarget.parse(sparsity.map(KeyValues.Value::text).orElse(PruneKeys.SPARSITY.defaultText()));
    Optional<String> statistics = values.text(PruneKeys.STATS);
    // Saved statistics are dense ones: --stats alone means one-shot.
    KeyValues.Value mode = values.find(PruneKeys.MODE)
        .orElse(new KeyValues.Value(statistics.isPresent() ? "one-shot" : PruneKeys.MODE.defaultText(), PruneKeys.MODE.option()));
    return PruneOptions.builder()
        .model(values.require(PruneKeys.MODEL))
        .out(values.require(PruneKeys.OUT))
        .method(PruningMethod.parse(method))
        .target(target)
        .calibration(values.text(PruneKeys.CALIB).orElse(null))
        .nsamples(values.positiveInt(PruneKeys.NSAMPLES))
        .seqlen(values.positiveInt(PruneKeys.SEQLEN))
        .seed(values.parse(PruneKeys.SEED, text -> KeyValues.integer(text, Long::parseLong)))
        .mode(values.parse(PruneKeys.MODE, mode, PruneOptions.Mode::parse))
        .partitions(values.find(PruneKeys.PARTITIONS).isPresent() ? values.positiveInt(PruneKeys.PARTITIONS) : 0)
        .saveStatistics(values.flag(PruneKeys.SAVE_STATS))
        .statistics(statistics.orElse(null))
        .config(values.text(PruneKeys.CONFIG).orElse(null))
        .wandaGroup(values.parse(PruneKeys.GROUP, PruneOptionsResolver::group))
        .allocation(values.parse(PruneKeys.ALLOCATION, PruneOptions.Allocation::parse))
        .minKeep(values.number(PruneKeys.MIN_KEEP))
        .owlLambda(values.number(PruneKeys.OWL_LAMBDA))
        .owlM(values.number(PruneKeys.OWL_M))
        .gpusPerTask(values.number(PruneKeys.GPUS_PER_TASK))
        .gpusPerExecutor(values.find(PruneKeys.GPUS_PER_EXECUTOR).isPresent() ? values.positiveInt(PruneKeys.GPUS_PER_EXECUTOR) : 0)
        .gpuDiscoveryScript(values.text(PruneKeys.GPU_DISCOVERY_SCRIPT).orElse(null))
        .gpuVendor(values.text(PruneKeys.GPU_VENDOR).orElse(null))
        .moeCalibration(values.parse(PruneKeys.MOE_CALIBRATION, PruneOptions::parseMoeCalibration))
        .minExpertTokens(values.parse(PruneKeys.MIN_EXPERT_TOKENS, text -> nonNegative(KeyValues.integer(text, Integer::parseInt))))
        .scoringTaskBytes((long) values.positiveInt(PruneKeys.SCORING_TASK_MB) << 20)
        .refinement(refinement(values))
        .overwrite(values.flag(PruneKeys.OVERWRITE));
  }

  /** --update and --refine with their knobs; defaults are the reference implementations'. */
  private static Refinement refinement(KeyValues values) {
    Refinement.Update update = values.parse(PruneKeys.UPDATE, Refinement.Update::parse);
    String refine = values.parse(PruneKeys.REFINE, text -> {
      String lower = text.toLowerCase(Locale.ROOT);
      ValidationException.check(lower.equals("dsnot") || lower.equals("none"), "use dsnot or none");
      return lower;
    });
    int iterations = values.positiveInt(PruneKeys.ADMM_ITERATIONS);
    // Gradual steps default to the reference's 15, or fewer iterations when fewer are asked for.
    int gradualSteps = values.find(PruneKeys.ADMM_GRADUAL_STEPS).isPresent()
        ? values.positiveInt(PruneKeys.ADMM_GRADUAL_STEPS) : Math.min(iterations, Admm.DEFAULTS.gradualSteps());
    Admm.Settings admm = new Admm.Settings(
        iterations, values.number(PruneKeys.ADMM_PERCDAMP), values.number(PruneKeys.ADMM_RHO), gradualSteps);
    Dsnot.Settings dsnot = new Dsnot.Settings(
        values.positiveInt(PruneKeys.DSNOT_CYCLES), values.number(PruneKeys.DSNOT_THRESHOLD), values.number(PruneKeys.DSNOT_VAR_POWER));
    String skip = values.find(PruneKeys.DSNOT_SKIP).map(KeyValues.Value::text).orElse(PruneKeys.DSNOT_SKIP.defaultText());
    return new Refinement(update, admm, refine.equals("dsnot"), dsnot, skip.equals("none") ? "" : skip);
  }

  private static Wanda.Group group(String text) {
    switch (text.toLowerCase(Locale.ROOT)) {
      case "row":
        return Wanda.Group.ROW;
      case "layer":
        return Wanda.Group.MATRIX;
      default:
        throw new ValidationException("use row or layer");
    }
  }

  private static SparsityTarget pattern(String text) {
    ValidationException.check(text.contains(":"), "expected N:M such as 2:4");
    return SparsityTarget.parse(text);
  }

  private static int nonNegative(int value) {
    ValidationException.check(value >= 0, "must be 0 or more");
    return value;
  }

}
