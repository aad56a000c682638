package dev.sparkprune.jobs.plan;

import java.util.Locale;
import java.util.Optional;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An executor as the plan sees it: its heap and how many tasks it runs at once. In local mode
 * the driver's JVM is the executor (its maximum heap, local[N]'s N).
 */
public record ExecutorShape(long memoryBytes, int cores) {
  public ExecutorShape {
    if (memoryBytes <= 0 || cores < 1) {
      throw new IllegalArgumentException("Invalid executor shape: " + memoryBytes + " bytes, " + cores + " cores");
    }
  }

  private static final Pattern LOCAL = Pattern.compile("local(?:\\[(\\*|\\d+)(?:,\\s*\\d+)?])?");
  private static final Pattern LOCAL_CLUSTER = Pattern.compile("local-cluster\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,\\s*(\\d+)\\s*]");

  /** One task's share of the heap. */
  public long taskBytes() {
    return memoryBytes / cores;
  }

  /**
   * The executors of a Spark master and conf: in local mode the driver's JVM ({@code driverHeap},
   * local[N]'s N threads, local[*]'s {@code processors}); local-cluster[workers, cores, MB] its
   * workers; otherwise spark.executor.memory (default 1g) and spark.executor.cores (default 1)
   * over spark.task.cpus (default 1).
   */
  public static ExecutorShape of(String master, Function<String, Optional<String>> conf, long driverHeap, int processors) {
    Matcher local = LOCAL.matcher(master.trim());
    if (local.matches()) {
      String threads = local.group(1);
      int cores = threads == null ? 1 : threads.equals("*") ? processors : Integer.parseInt(threads);
      return new ExecutorShape(driverHeap, Math.max(1, cores));
    }
    Matcher cluster = LOCAL_CLUSTER.matcher(master.trim());
    if (cluster.matches()) {
      return new ExecutorShape(Long.parseLong(cluster.group(3)) << 20, Math.max(1, Integer.parseInt(cluster.group(2))));
    }
    long memory = bytes(conf.apply("spark.executor.memory").orElse("1g"));
    int cores = Integer.parseInt(conf.apply("spark.executor.cores").orElse("1").trim());
    int taskCpus = Integer.parseInt(conf.apply("spark.task.cpus").orElse("1").trim());
    return new ExecutorShape(memory, Math.max(1, cores / Math.max(1, taskCpus)));
  }

  /** A JVM memory string as Spark reads it: bytes, or k, m, g, t (binary), default unit MB for a bare number in spark.executor.memory. */
  static long bytes(String text) {
    String value = text.trim().toLowerCase(Locale.ROOT);
    Matcher matcher = Pattern.compile("(\\d+)([kmgt]?)b?").matcher(value);
    if (!matcher.matches()) {
      throw new IllegalArgumentException("Invalid memory size: " + text);
    }
    long number = Long.parseLong(matcher.group(1));
    switch (matcher.group(2)) {
      case "k":
        return number << 10;
      case "g":
        return number << 30;
      case "t":
        return number << 40;
      default:
        // Spark reads a bare spark.executor.memory number as MiB.
        return number << 20;
    }
  }
}
