package dev.sparkprune.jobs.spark;

import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Objects;
import java.util.Set;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.RuntimeConfig;

/**
 * Test-only faults, parsed once on the driver from three Spark settings and shipped to tasks
 * inside the job context; {@link #NONE} (every setting absent) in real runs. Task kinds are
 * {@code embed}, {@code statistics}, {@code advance}, {@code score} and {@code write}; the
 * driver's publish step is {@code publish}.
 *
 * @param failFirstAttempt task kinds whose first attempt throws, to check that retries give
 *     bit-identical output
 * @param exitExecutorOnce {@code kind@marker-path}, or empty: the first task of that kind to
 *     create the marker file halts its executor JVM, as a lost machine would; never the driver
 * @param haltJvmAt a kind ("write": mid-shard, "publish": after the earlier output was set
 *     aside), or empty: the JVM reaching it halts, as kill -9 would
 */
public record FaultInjection(Set<String> failFirstAttempt, String exitExecutorOnce, String haltJvmAt) implements Serializable {
  /** Comma-separated task kinds whose first attempt throws. */
  public static final String FAIL_FIRST_ATTEMPT = "spark.sparkprune.test.failFirstAttempt";
  /** {@code kind@marker-path}: the first task of that kind halts its executor once. */
  public static final String EXIT_EXECUTOR_ONCE = "spark.sparkprune.test.exitExecutorOnce";
  /** "write" or "publish": where the JVM halts. */
  public static final String HALT_JVM_AT = "spark.sparkprune.test.haltJvmAt";

  public static final FaultInjection NONE = new FaultInjection(Set.of(), "", "");

  public FaultInjection {
    failFirstAttempt = Set.copyOf(Objects.requireNonNull(failFirstAttempt, "failFirstAttempt is null"));
    Objects.requireNonNull(exitExecutorOnce, "exitExecutorOnce is null");
    Objects.requireNonNull(haltJvmAt, "haltJvmAt is null");
  }

  /**
   * The faults a test asked for in the session's runtime settings (where tests set them
   * between runs of one session); {@link #NONE} when it asked for none.
   */
  public static FaultInjection parse(RuntimeConfig conf) {
    Set<String> kinds = new LinkedHashSet<>();
    for (String kind : conf.get(FAIL_FIRST_ATTEMPT, "").split(",")) {
      if (!kind.isBlank()) {
        kinds.add(kind.trim());
      }
    }
    FaultInjection parsed = new FaultInjection(kinds, conf.get(EXIT_EXECUTOR_ONCE, "").trim(), conf.get(HALT_JVM_AT, "").trim());
    return parsed.equals(NONE) ? NONE : parsed;
  }

  /**
   * At a point of a task of this kind: throws on its first attempt when asked to; or halts the
   * JVM; or, once per marker, halts the executor running it (never the driver).
   */
  public void at(String kind) {
    TaskContext task = TaskContext.get();
    if (failFirstAttempt.contains(kind) && task != null && task.attemptNumber() == 0) {
      throw new IllegalStateException("Injected failure of the first attempt of a " + kind + " task");
    }
    if (kind.equals(haltJvmAt)) {
      Runtime.getRuntime().halt(137);
    }
    if (exitExecutorOnce.startsWith(kind + "@")) {
      SparkEnv env = SparkEnv.get();
      if (env != null && !"driver".equals(env.executorId())) {
        try {
          Files.createFile(Path.of(exitExecutorOnce.substring(kind.length() + 1)));
        } catch (IOException e) {
          return; // Another task already took an executor down once.
        }
        Runtime.getRuntime().halt(52);
      }
    }
  }
}
