package dev.sparkprune.jobs.prune;

import org.apache.spark.sql.SparkSession;

/**
 * The job's SparkSession: the one spark-submit started, or an in-process {@code local[*]} one.
 * sparkprune prints its own progress lines, so Spark's console progress bar is off; local runs
 * bind to loopback and skip the web UI.
 */
public final class SparkSessions {
  private SparkSessions() {}

  /**
   * The Hadoop configuration the session will have (core-site.xml, {@code spark.hadoop.*} from
   * spark-submit), built without starting Spark, so that output checks can fail fast.
   */
  public static org.apache.hadoop.conf.Configuration hadoopConfigurationBeforeStart() {
    // As SparkHadoopUtil does, without loading Spark: spark-submit passes --conf as system properties.
    org.apache.hadoop.conf.Configuration conf = new org.apache.hadoop.conf.Configuration();
    for (String key : System.getProperties().stringPropertyNames()) {
      if (key.startsWith("spark.hadoop.")) {
        conf.set(key.substring("spark.hadoop.".length()), System.getProperty(key));
      }
    }
    return conf;
  }

  public static SparkSession getOrCreate(String master) {
    SparkSession.Builder builder = SparkSession.builder()
        .appName("sparkprune")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
        .config("spark.kryo.registrator", SparkpruneKryoRegistrator.class.getName())
        .config("spark.kryoserializer.buffer.max", "1g");
    String resolved = master != null ? master : System.getProperty("spark.master", "local[*]");
    builder.master(resolved);
    if (resolved.startsWith("local")) {
      builder
          .config("spark.ui.enabled", "false")
          .config("spark.driver.host", "127.0.0.1")
          .config("spark.driver.bindAddress", "127.0.0.1")
          .config("spark.sql.shuffle.partitions", "8");
    }
    return builder.getOrCreate();
  }
}
