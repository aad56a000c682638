package dev.sparkprune.jobs.prune.plan;

import dev.sparkprune.tensorio.ValidationException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;

/**
 * The executor a run will get, read before Spark starts: in local mode the driver JVM is the
 * executor (its heap, the local threads); {@code local-cluster[n, cores, MB]} as written; on a
 * cluster {@code spark.executor.memory} (Spark's default 1g), {@code spark.executor.cores}
 * (default 1) and {@code spark.executor.instances} (default 1: the plan is per executor).
 */
public final class ExecutorShapes {
  private static final Pattern LOCAL = Pattern.compile("local(?:\\[(\\*|\\d+)(?:\\s*,\\s*\\d+)?\\])?");
  private static final Pattern LOCAL_CLUSTER = Pattern.compile("local-cluster\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,\\s*(\\d+)\\s*\\]");

  private static final Pattern SIZE = Pattern.compile("(\\d{1,9})([kmgt])?b?");

  private ExecutorShapes() {}

  /** The shape for {@code master} (null: spark.master, else local[*]) and the Spark conf. */
  public static MemoryPlan.ExecutorShape of(SparkConf conf, String master) {
    String resolved = master != null ? master : conf.get("spark.master", System.getProperty("spark.master", "local[*]"));
    Matcher local = LOCAL.matcher(resolved);
    if (local.matches()) {
      String threads = local.group(1);
      int cores = threads == null ? 1 : threads.equals("*") ? Runtime.getRuntime().availableProcessors() : Integer.parseInt(threads);
      return new MemoryPlan.ExecutorShape(Runtime.getRuntime().maxMemory(), Math.max(1, cores), 1,
          "SPARKPRUNE_HEAP (local mode: the driver's heap)", (Runtime.getRuntime().maxMemory() >> 20) + "m");
    }
    Matcher cluster = LOCAL_CLUSTER.matcher(resolved);
    if (cluster.matches()) {
      return new MemoryPlan.ExecutorShape(Long.parseLong(cluster.group(3)) << 20, Integer.parseInt(cluster.group(2)),
          Integer.parseInt(cluster.group(1)), "the local-cluster worker memory", cluster.group(3) + "m");
    }
    String memory = conf.get("spark.executor.memory", "1g");
    return new MemoryPlan.ExecutorShape(bytes("spark.executor.memory", memory), positive(conf, "spark.executor.cores"),
        positive(conf, "spark.executor.instances"), "spark.executor.memory", memory);
  }

  /** Explicit shape, as {@code inspect --plan --executor-memory 64g --executor-cores 8 --executors 16} gives it. */
  public static MemoryPlan.ExecutorShape of(String memory, int cores, int executors) {
    return new MemoryPlan.ExecutorShape(bytes("--executor-memory", memory), cores, executors, "--executor-memory", memory);
  }

  private static long bytes(String key, String value) {
    // Spark's rule for spark.executor.memory: a bare number is MiB; k, m, g, t (optionally + "b") are powers of 1024.
    Matcher matcher = SIZE.matcher(value.trim().toLowerCase(java.util.Locale.ROOT));
    ValidationException.check(matcher.matches(), "Invalid %s %s: use a size such as 4g or 512m", key, value);
    int shift = switch (matcher.group(2) == null ? "m" : matcher.group(2)) {
      case "k" -> 10;
      case "m" -> 20;
      case "g" -> 30;
      default -> 40;
    };
    return Long.parseLong(matcher.group(1)) << shift;
  }

  private static int positive(SparkConf conf, String key) {
    String value = conf.get(key, "1");
    try {
      int parsed = Integer.parseInt(value.trim());
      ValidationException.check(parsed > 0, "Invalid %s %s: must be a positive integer", key, value);
      return parsed;
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid " + key + " " + value + ": must be a positive integer");
    }
  }
}
