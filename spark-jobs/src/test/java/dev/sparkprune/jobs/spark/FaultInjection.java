package dev.sparkprune.jobs.spark;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;

/**
 * The tests' fault probe ({@link FaultProbe}): named by {@code spark.sparkprune.test.probe-class}
 * and configured by three settings beside it. Points are the task kinds {@code embed},
 * {@code statistics}, {@code advance}, {@code score}, {@code masks} and {@code write}, and the
 * driver's {@code publish}.
 *
 * <ul>
 *   <li>{@value #FAIL_FIRST_ATTEMPT}: comma-separated kinds whose first attempt throws, to check
 *       that retries give bit-identical output;
 *   <li>{@value #EXIT_EXECUTOR_ONCE}: {@code kind@marker-path}: the first task of that kind to
 *       create the marker file halts its executor JVM, as a lost machine would; never the driver;
 *   <li>{@value #HALT_JVM_AT}: a kind ("write": mid-shard, "publish": after the earlier output
 *       was set aside): the JVM reaching it halts, as kill -9 would.
 * </ul>
 */
public final class FaultInjection implements FaultProbe {
  private static final long serialVersionUID = 2L;

  /** Comma-separated task kinds whose first attempt throws. */
  public static final String FAIL_FIRST_ATTEMPT = "spark.sparkprune.test.fail-first-attempt";
  /** {@code kind@marker-path}: the first task of that kind halts its executor once. */
  public static final String EXIT_EXECUTOR_ONCE = "spark.sparkprune.test.exit-executor-once";
  /** "write" or "publish": where the JVM halts. */
  public static final String HALT_JVM_AT = "spark.sparkprune.test.halt-jvm-at";

  private final Set<String> failFirstAttempt;
  private final String exitExecutorOnce;
  private final String haltJvmAt;

  /** @param settings the session's {@code spark.sparkprune.test.*} settings */
  public FaultInjection(Map<String, String> settings) {
    Set<String> kinds = new LinkedHashSet<>();
    for (String kind : settings.getOrDefault(FAIL_FIRST_ATTEMPT, "").split(",")) {
      if (!kind.isBlank()) {
        kinds.add(kind.trim());
      }
    }
    this.failFirstAttempt = Set.copyOf(kinds);
    this.exitExecutorOnce = settings.getOrDefault(EXIT_EXECUTOR_ONCE, "").trim();
    this.haltJvmAt = Objects.requireNonNull(settings.getOrDefault(HALT_JVM_AT, "")).trim();
  }

  /**
   * At a point of a task of this kind: throws on its first attempt when asked to; or halts the
   * JVM; or, once per marker, halts the executor running it (never the driver).
   */
  @Override
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
