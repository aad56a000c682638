package dev.sparkprune.jobs.options;

import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.tensorio.ValidationException;

/**
 * The keys every job that calibrates on a model shares (prune, shrink): declared once, so each
 * command has them with the same names, help, parsing and conf keys.
 */
public final class CommonKeys {
  public static final double SPARSITY_DEFAULT = 0.5;

  /** Unstructured target (a ratio; a pattern such as 2:4 is read too); exclusive with {@link #PATTERN}. */
  public static final OptionKey<SparsityTarget> SPARSITY = OptionKey.builder("sparsity", SparsityTarget::parse).label("S")
      .defaultValue(SPARSITY_DEFAULT).description("Fraction of each linear pruned (unstructured).").build();

  /** N:M semi-structured target; exclusive with {@link #SPARSITY}. */
  public static final OptionKey<SparsityTarget> PATTERN = OptionKey.builder("pattern", CommonKeys::pattern).label("N:M")
      .description("Prune N of every M consecutive weights, e.g. 2:4.").build();

  public static final int NSAMPLES_DEFAULT = 128;

  /** Calibration samples. */
  public static final OptionKey<Integer> NSAMPLES = OptionKey.builder("nsamples", Parsers.POSITIVE_INTEGER).label("N")
      .defaultValue(NSAMPLES_DEFAULT).fromConf().check(Parsers.atLeast(1, "must be a positive integer"))
      .description("Calibration samples.").build();

  public static final int SEQLEN_DEFAULT = 2048;

  /** Tokens per calibration sample; pre-tokenized rows give their own length when it is not set. */
  public static final OptionKey<Integer> SEQLEN = OptionKey.builder("seqlen", Parsers.POSITIVE_INTEGER).label("N")
      .defaultValue(SEQLEN_DEFAULT).fromConf().check(Parsers.atLeast(2, "must be at least 2"))
      .description("Tokens per sample (pre-tokenized rows: their length).").build();

  public static final long SEED_DEFAULT = 0;

  /** Seed of the calibration window offsets. */
  public static final OptionKey<Long> SEED = OptionKey.builder("seed", Parsers.LONG).label("N").defaultValue(SEED_DEFAULT).fromConf()
      .description("Seed of the calibration windows.").build();

  /** Calibration partitions; none means Spark's default parallelism. */
  public static final OptionKey<Integer> PARTITIONS = OptionKey.builder("partitions", Parsers.POSITIVE_INTEGER).label("N").fromConf()
      .check(Parsers.atLeast(1, "must be a positive integer")).description("Calibration partitions (default: Spark's parallelism).").build();

  /**
   * The budget of one expert task of an expert-parallel MoE block, in MB: an expert group's float
   * weights plus the statistics kept per expert. None: a quarter of one task's share of executor memory.
   */
  public static final OptionKey<Integer> EXPERT_TASK_MB = OptionKey.builder("expert-task-mb", Parsers.POSITIVE_INTEGER).label("MB")
      .fromConf().check(Parsers.atLeast(1, "must be a positive integer"))
      .description("MB of experts + statistics per expert task (default: 1/4 task heap).").build();

  /** Replace an existing --out that is not a sparkprune output. */
  public static final OptionKey<Boolean> OVERWRITE = OptionKey.flag("overwrite", "Replace an existing --out that is not a sparkprune output.");

  private CommonKeys() {}

  private static SparsityTarget pattern(String text) {
    ValidationException.check(text.contains(":"), "expected N:M such as 2:4");
    return SparsityTarget.parse(text);
  }
}
