package dev.sparkprune.jobs.calibration;

import java.io.Serializable;
import java.util.Comparator;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import scala.Tuple2;

/**
 * A calibration step's partials per key, folded over the chunks ({@link PairwiseFold}): on the driver when the
 * visitor's partials are small ({@link BlockVisitor#foldOnDriver}: they came back with the
 * step's own job, so no shuffle and no second job), else distributed by key (X^T X stays on the
 * executors and goes to the tasks that need it).
 */
public final class BlockPartials<P extends Serializable> {
  private final Map<String, P> onDriver;
  private final JavaPairRDD<String, P> distributed;

  private BlockPartials(Map<String, P> onDriver, JavaPairRDD<String, P> distributed) {
    this.onDriver = onDriver;
    this.distributed = distributed;
  }

  public static <P extends Serializable> BlockPartials<P> onDriver(Map<String, P> folded) {
    return new BlockPartials<>(Map.copyOf(folded), null);
  }

  public static <P extends Serializable> BlockPartials<P> distributed(JavaPairRDD<String, P> folded) {
    return new BlockPartials<>(null, Objects.requireNonNull(folded, "folded is null"));
  }

  /** The folded partials when they are on the driver already. */
  public Optional<Map<String, P>> folded() {
    return Optional.ofNullable(onDriver);
  }

  /** The folded partials on the driver, collecting them when distributed (small partials only). */
  public Map<String, P> asMap() {
    return onDriver != null ? onDriver : distributed.collectAsMap();
  }

  /** The folded partials as a pair RDD, parallelizing them when they are on the driver. */
  public JavaPairRDD<String, P> asRdd(JavaSparkContext jsc) {
    if (distributed != null) {
      return distributed;
    }
    return jsc.parallelizePairs(onDriver.entrySet().stream()
        .map(entry -> new Tuple2<>(entry.getKey(), entry.getValue()))
        .sorted(Comparator.comparing(Tuple2::_1))
        .toList(), Math.max(1, Math.min(onDriver.size(), jsc.defaultParallelism())));
  }
}
