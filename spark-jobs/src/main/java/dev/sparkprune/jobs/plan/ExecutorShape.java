package dev.sparkprune.jobs.plan;

import dev.sparkprune.tensorio.ValidationException;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An executor as every plan sees it, known before Spark starts: its heap, how many tasks it runs
 * at once, how many executors there are, and for messages the one setting that raises the heap
 * and where the figures come from. The one resolver of the Spark master and conf: in local mode
 * the driver's JVM is the executor (its maximum heap, local[N]'s N); {@code
 * local-cluster[workers, cores, MB]} as written; otherwise {@code spark.executor.memory} (default
 * 1g), {@code spark.executor.cores} (default 1) over {@code spark.task.cpus} (default 1), and
 * {@code spark.executor.instances} (0, unknown, when unset or with dynamic allocation).
 *
 * @param memoryBytes the executor heap
 * @param cores tasks the executor runs at once
 * @param executors executors of the application; 0 when unknown
 * @param setting the setting that raises the heap, as a message names it
 * @param source where the figures come from, as a message names them
 */
public record ExecutorShape(long memoryBytes, int cores, int executors, String setting, String source) {
  /** Spark keeps this much of every executor heap for itself (its RESERVED_SYSTEM_MEMORY_BYTES). */
  public static final long SPARK_RESERVED_BYTES = 300L << 20;
  private static final Pattern LOCAL = Pattern.compile("local(?:\\[(\\*|\\d+)(?:\\s*,\\s*\\d+)?])?");
  private static final Pattern LOCAL_CLUSTER = Pattern.compile("local-cluster\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,\\s*(\\d+)\\s*]");
  private static final Pattern SIZE = Pattern.compile("(\\d{1,12})([kmgt])?b?");
  /** Calibration partitions when neither --partitions nor spark.default.parallelism says, and the executors are unknown. */
  private static final int UNKNOWN_PARALLELISM = 16;

  public ExecutorShape {
    if (memoryBytes <= 0 || cores < 1 || executors < 0) {
      throw new IllegalArgumentException("Invalid executor shape: " + memoryBytes + " bytes, " + cores + " cores, " + executors + " executors");
    }
    Objects.requireNonNull(setting, "setting is null");
    Objects.requireNonNull(source, "source is null");
  }

  /** One executor of {@code memoryBytes} running {@code cores} tasks (tests, tools). */
  public ExecutorShape(long memoryBytes, int cores) {
    this(memoryBytes, cores, 1, "the executor memory", "an executor of " + memoryBytes + " bytes");
  }

  /** One task's share of the heap. */
  public long taskBytes() {
    return memoryBytes / cores;
  }

  /** The heap tasks may fill: the executor memory less Spark's reserved 300 MiB. */
  public long usableBytes() {
    return Math.max(0, memoryBytes - SPARK_RESERVED_BYTES);
  }

  /** One task's share of {@link #usableBytes}. */
  public long usableTaskBytes() {
    return usableBytes() / cores;
  }

  /**
   * Calibration partitions when neither --partitions nor spark.default.parallelism is given:
   * Spark's default parallelism as it will be (see {@code SparkExecutors.defaultParallelism}).
   */
  public int defaultParallelism() {
    return executors > 0 ? executors * cores : UNKNOWN_PARALLELISM;
  }

  /**
   * The executors of {@code master} and a conf lookup, with the driver's heap and processors
   * given (what local mode runs on): what {@code SparkExecutors.of} feeds from a Spark conf (jobs.plan imports no Spark).
   */
  public static ExecutorShape of(String master, Function<String, Optional<String>> conf, long driverHeap, int processors) {
    String resolved = master.trim();
    int taskCpus = Math.max(1, positive(conf, "spark.task.cpus"));
    Matcher cluster = LOCAL_CLUSTER.matcher(resolved);
    if (cluster.matches()) {
      return new ExecutorShape(Long.parseLong(cluster.group(3)) << 20, Math.max(1, Integer.parseInt(cluster.group(2)) / taskCpus),
          Integer.parseInt(cluster.group(1)), "the local-cluster worker memory", resolved + ": executor memory from the master URL");
    }
    Matcher local = LOCAL.matcher(resolved);
    if (local.matches()) {
      String threads = local.group(1);
      int cores = threads == null ? 1 : threads.equals("*") ? processors : Integer.parseInt(threads);
      return new ExecutorShape(driverHeap, Math.max(1, cores / taskCpus), 1, "SPARKPRUNE_HEAP",
          resolved + ": executors run in this JVM, whose heap is set by -Xmx or SPARKPRUNE_HEAP");
    }
    String memory = conf.apply("spark.executor.memory").orElse("1g");
    int cores = positive(conf, "spark.executor.cores");
    boolean dynamic = conf.apply("spark.dynamicAllocation.enabled").map(value -> value.trim().equalsIgnoreCase("true")).orElse(false);
    int executors = dynamic || conf.apply("spark.executor.instances").isEmpty() ? 0 : positive(conf, "spark.executor.instances");
    return new ExecutorShape(bytes("spark.executor.memory", memory), Math.max(1, cores / taskCpus), executors, "spark.executor.memory",
        "spark.executor.memory " + memory.trim() + ", spark.executor.cores " + cores);
  }

  /** An explicit shape, as {@code inspect --plan --executor-memory 64g --executor-cores 8 --executors 16} gives it. */
  public static ExecutorShape given(String memory, int cores, int executors) {
    return new ExecutorShape(bytes("--executor-memory", memory), cores, executors, "--executor-memory", "--executor-memory " + memory);
  }

  /** This shape with other task and executor counts (inspect's --executor-cores, --executors over the conf's). */
  public ExecutorShape withCounts(int newCores, int newExecutors) {
    return new ExecutorShape(memoryBytes, newCores, newExecutors, setting, source);
  }

  /**
   * A memory size as Spark reads spark.executor.memory: a bare number is MiB; k, m, g, t
   * (optionally followed by b) are powers of 1024.
   */
  static long bytes(String key, String value) {
    Matcher matcher = SIZE.matcher(value.trim().toLowerCase(Locale.ROOT));
    ValidationException.check(matcher.matches(), "Invalid %s %s: use a size such as 4g or 512m", key, value);
    int shift = switch (matcher.group(2) == null ? "m" : matcher.group(2)) {
      case "k" -> 10;
      case "m" -> 20;
      case "g" -> 30;
      default -> 40;
    };
    long number = Long.parseLong(matcher.group(1));
    ValidationException.check(number > 0 && number < 1L << (62 - shift), "Invalid %s %s: use a size such as 4g or 512m", key, value);
    return number << shift;
  }

  private static int positive(Function<String, Optional<String>> conf, String key) {
    String value = conf.apply(key).orElse("1");
    try {
      int parsed = Integer.parseInt(value.trim());
      ValidationException.check(parsed > 0, "Invalid %s %s: must be a positive integer", key, value);
      return parsed;
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid " + key + " " + value + ": must be a positive integer");
    }
  }
}
