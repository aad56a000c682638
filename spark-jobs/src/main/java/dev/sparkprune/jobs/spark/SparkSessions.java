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
 * bind to loopback and skip the web UI. Every session quiets library logging ({@link LogLevels})
 * and fails a job at the first bad input a task finds ({@link ValidationFailures}).
 */
public final class SparkSessions {
  private static final String HADOOP_PREFIX = "spark.hadoop.";
  /** System property bin/sparkprune sets to the shaded jar, which a cluster master's executors load. */
  public static final String APPLICATION_JAR = "sparkprune.application.jar";
  private static final String OPENBLAS_CORETYPE = "OPENBLAS_CORETYPE";

  private SparkSessions() {}

  /**
   * The master URLs Spark accepts (SparkContext's own patterns, and the cluster managers it
   * ships): checked before Spark starts, which would otherwise fail with a stack trace.
   */
  private static final Pattern MASTER =
      Pattern.compile("local(\\[(\\*|\\d+)(\\s*,\\s*\\d+)?\\])?|local-cluster\\[\\s*\\d+\\s*,\\s*\\d+\\s*,\\s*\\d+\\s*\\]|spark://\\S+|yarn|k8s://\\S+");

  private static final Pattern COUNTS = Pattern.compile("\\d+");
  /** How long the check waits for a standalone master to accept a connection. */
  private static final int CONNECT_TIMEOUT_MILLIS = 5_000;

  /**
   * Checks --master before Spark starts: one line for a URL that Spark cannot parse, thread or
   * executor counts of zero ({@code local[0]}), and a standalone master ({@code spark://}) whose
   * host does not resolve or where nothing accepts a connection (Spark itself retries for a
   * minute, then fails with hundreds of log lines).
   */
  public static void checkMaster(String master) {
    ValidationException.check(
        master == null || MASTER.matcher(master).matches(),
        "Invalid --master %s: use local[N], local[*], spark://HOST:PORT, yarn or k8s://URL",
        master);
    if (master == null) {
      return;
    }
    if (master.startsWith("local")) {
      java.util.regex.Matcher counts = COUNTS.matcher(master);
      while (counts.find()) {
        ValidationException.check(!counts.group().matches("0+"),
            "Invalid --master %s: counts must be at least 1 (threads, failures, workers, cores, memory); e.g. local[2] or local[*]", master);
      }
    } else if (master.startsWith("spark://")) {
      checkStandalone(master);
    }
  }

  /**
   * A standalone master URL ({@code spark://host:port}, or several for HA): every port in range,
   * and at least one host that resolves and accepts a TCP connection within a few seconds.
   */
  private static void checkStandalone(String master) {
    String failure = null;
    for (String address : master.substring("spark://".length()).split(",")) {
      int colon = address.lastIndexOf(':');
      String host = colon < 0 ? address : address.substring(0, colon);
      String port = colon < 0 ? "" : address.substring(colon + 1);
      ValidationException.check(!host.isEmpty() && port.matches("\\d{1,5}") && Integer.parseInt(port) >= 1 && Integer.parseInt(port) <= 65535,
          "Invalid --master %s: expected spark://HOST:PORT with a port from 1 to 65535", master);
      java.net.InetAddress resolved;
      try {
        resolved = java.net.InetAddress.getByName(host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host);
      } catch (java.net.UnknownHostException e) {
        failure = failure != null ? failure : "unknown host " + host;
        continue;
      }
      try (java.net.Socket socket = new java.net.Socket()) {
        socket.connect(new java.net.InetSocketAddress(resolved, Integer.parseInt(port)), CONNECT_TIMEOUT_MILLIS);
        return;
      } catch (java.io.IOException e) {
        failure = failure != null ? failure : "nothing accepts connections at " + host + ":" + port + " (" + e.getMessage() + ")";
      }
    }
    throw new ValidationException("Cannot reach --master " + master + ": " + failure + "; is the master running, and is the URL its spark:// address?");
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
    SparkConf given = new SparkConf();
    SparkSession.Builder builder = SparkSession.builder()
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
        .config("spark.kryo.registrator", SparkpruneKryoRegistrator.class.getName())
        .config("spark.kryoserializer.buffer.max", "1g")
        .config("spark.plugins", plugins(given));
    // The name spark-submit was given (--name, or an Airflow task's) is what the master shows.
    if (!given.contains("spark.app.name")) {
      builder.appName("sparkprune");
    }
    String resolved = master != null ? master : given.get("spark.master", "local[*]");
    builder.master(resolved);
    if (resolved.startsWith("local")) {
      builder
          .config("spark.ui.enabled", "false")
          .config("spark.driver.host", "127.0.0.1")
          .config("spark.driver.bindAddress", "127.0.0.1")
          .config("spark.sql.shuffle.partitions", "8");
    } else {
      clusterSettings(given).forEach(builder::config);
    }
    LogLevels.apply(given);
    SparkSession session = builder.getOrCreate();
    ValidationFailures.install(session.sparkContext());
    return session;
  }

  /** {@code spark.plugins} with {@link LogLevels} added to any the conf names. */
  private static String plugins(SparkConf given) {
    String existing = given.get("spark.plugins", "").trim();
    String own = LogLevels.class.getName();
    return existing.isEmpty() ? own : existing.contains(own) ? existing : existing + "," + own;
  }

  /**
   * What executors on a cluster need that spark-submit would have given them: the application
   * jar (bin/sparkprune with {@code --master spark://...} runs from the Maven classpath, so its
   * executors would otherwise miss sparkprune's classes) and the OpenBLAS core type the launcher
   * pinned for this machine.
   */
  static java.util.Map<String, String> clusterSettings(SparkConf given) {
    java.util.Map<String, String> settings = new java.util.LinkedHashMap<>();
    if (given.get("spark.jars", "").isBlank()) {
      String jar = System.getProperty(APPLICATION_JAR, "");
      ValidationException.check(!jar.isBlank() && new java.io.File(jar).isFile(),
          "Cannot run on a cluster master without the application jar: build it (mvn -B -q -DskipTests package) and run "
              + "bin/sparkprune, or submit with deploy/sparkprune-submit");
      settings.put("spark.jars", jar);
    }
    String coreType = System.getenv(OPENBLAS_CORETYPE);
    if (coreType != null && !coreType.isBlank() && !given.contains("spark.executorEnv." + OPENBLAS_CORETYPE)) {
      settings.put("spark.executorEnv." + OPENBLAS_CORETYPE, coreType);
    }
    return settings;
  }
}
