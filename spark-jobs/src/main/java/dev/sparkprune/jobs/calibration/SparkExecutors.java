package dev.sparkprune.jobs.calibration;

import dev.sparkprune.jobs.plan.ExecutorShape;
import java.util.Optional;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * The {@link ExecutorShape} of a Spark master and conf, or of a running application: the one
 * resolver ({@link ExecutorShape#of(String, java.util.function.Function, long, int)}) fed from
 * Spark here, because jobs.plan computes the run plan without importing Spark.
 */
public final class SparkExecutors {
  private SparkExecutors() {}

  /** This Spark application's executors: the driver's JVM in local mode. */
  public static ExecutorShape of(JavaSparkContext jsc) {
    return of(jsc.master(), jsc.getConf());
  }

  /**
   * The executors a session of {@code master} (null: the conf's spark.master, else local[*]) and
   * {@code conf} will have (spark-submit passes the conf as system properties; the driver's JVM
   * is this one).
   */
  public static ExecutorShape of(String master, SparkConf conf) {
    String resolved = master != null ? master : conf.get("spark.master", System.getProperty("spark.master", "local[*]"));
    return ExecutorShape.of(resolved, key -> conf.contains(key) ? Optional.of(conf.get(key)) : Optional.empty(),
        Runtime.getRuntime().maxMemory(), Runtime.getRuntime().availableProcessors());
  }

  /** Calibration partitions when --partitions is not given: Spark's default parallelism as it will be. */
  public static int defaultParallelism(ExecutorShape executors, SparkConf conf) {
    return conf.getInt("spark.default.parallelism", executors.defaultParallelism());
  }
}
