package dev.sparkprune.jobs;

import dev.sparkprune.jobs.spark.SparkpruneKryoRegistrator;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * Spark's {@code local-cluster[workers, cores, memory]} master from a Maven classpath: a real
 * standalone master and workers in this JVM, executors in their own JVMs. Workers launch
 * executors from {@code SPARK_HOME} (Surefire points it at target/spark-home), which only needs
 * an empty {@code jars/}; the executors get the test classpath instead.
 */
public final class LocalClusterSessions {
  private LocalClusterSessions() {}

  public static SparkSession start(String master, Map<String, String> settings) {
    String sparkHome = System.getenv("SPARK_HOME");
    if (sparkHome == null) {
      throw new IllegalStateException("SPARK_HOME is not set: run the local-cluster tests through Maven (surefire sets it)");
    }
    try {
      Files.createDirectories(Path.of(sparkHome, "jars"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    SparkSession.Builder builder = SparkSession.builder()
        .master(master)
        .appName("sparkprune-local-cluster-test")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.executorEnv.SPARK_SCALA_VERSION", "2.13")
        .config("spark.executorEnv.SPARK_LOCAL_IP", "127.0.0.1")
        .config("spark.executor.extraClassPath", classpath)
        .config("spark.executor.extraJavaOptions", "-Xss4m")
        .config("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
        .config("spark.kryo.registrator", SparkpruneKryoRegistrator.class.getName())
        .config("spark.kryoserializer.buffer.max", "512m");
    settings.forEach(builder::config);
    return builder.getOrCreate();
  }
}
