package dev.sparkprune.jobs.spark;

import dev.sparkprune.tensorio.ValidationException;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import scala.Tuple2;

/**
 * The job's SparkSession: the one spark-submit started, or an in-process {@code local[*]} one.
 * sparkprune prints its own progress lines, so Spark's console progress bar is off; local runs
 * bind to loopback and skip the web UI.
 */
public final class SparkSessions {
  private static final String HADOOP_PREFIX = "spark.hadoop.";

  private SparkSessions() {}

  /**
   * The master URLs Spark accepts (SparkContext's own patterns, and the cluster managers it
   * ships): checked before Spark starts, which would otherwise fail with a stack trace.
   */
  private static final Pattern MASTER =
      Pattern.compile("local(\\[(\\*|\\d+)(\\s*,\\s*\\d+)?\\])?|local-cluster\\[\\s*\\d+\\s*,\\s*\\d+\\s*,\\s*\\d+\\s*\\]|spark://\\S+|yarn|k8s://\\S+");

  /** Checks --master: one line for a URL that Spark cannot parse. */
  public static void checkMaster(String master) {
    ValidationException.check(
        master == null || MASTER.matcher(master).matches(),
        "Invalid --master %s: use local[N], local[*], spark://HOST:PORT, yarn or k8s://URL",
        master);
  }

  /**
   * The Hadoop configuration the session will have, before it exists: Hadoop's defaults plus
   * the {@code spark.hadoop.*} properties spark-submit passes (as Spark copies them), so the
   * driver can open the model and texts before starting Spark.
   */
  public static Configuration hadoopConfiguration() {
    Configuration conf = new Configuration();
    for (Tuple2<String, String> entry : new SparkConf().getAll()) {
      if (entry._1().startsWith(HADOOP_PREFIX)) {
        conf.set(entry._1().substring(HADOOP_PREFIX.length()), entry._2());
      }
    }
    return conf;
  }

  public static SparkSession getOrCreate(String master) {
    checkMaster(master);
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
