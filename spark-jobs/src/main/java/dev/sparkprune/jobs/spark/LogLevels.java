package dev.sparkprune.jobs.spark;

import dev.sparkprune.tensorio.ValidationException;
import java.util.Locale;
import java.util.Map;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.ConfigurationSource;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.DefaultConfiguration;
import org.apache.spark.SparkConf;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * How loud Spark and Hadoop are in sparkprune's JVMs, without a log4j file on every node: a
 * {@code -Dlog4j2.configurationFile} path must exist where each JVM starts, which on a standalone
 * cluster is true neither for a cluster-mode driver nor for executors (files sent with
 * {@code --files} arrive after the JVM started). {@code spark.sparkprune.log-level} (default
 * {@code warn}) is the level of every library logger in the driver and, through this plugin, in
 * each executor; sparkprune's own loggers stay at {@code info}. It applies where log4j runs on
 * Spark's built-in profile, or where the key is set; a site's own log4j configuration (in
 * {@code SPARK_CONF_DIR}, or given on the command line) otherwise wins.
 */
public final class LogLevels implements SparkPlugin {
  /** Spark conf key: off, error, warn, info, debug or trace. */
  public static final String KEY = "spark.sparkprune.log-level";

  static final String DEFAULT = "warn";
  private static final String OWN_LOGGERS = "dev.sparkprune";
  /** Where Spark's built-in profiles live (log4j2-defaults.properties, the JSON layout). */
  private static final String SPARK_PROFILES = "org/apache/spark/log4j2-";

  /** Applies {@link #KEY} to this JVM's loggers, as the class comment says when. */
  public static void apply(SparkConf conf) {
    scala.Option<String> given = conf.getOption(KEY);
    Level level = parse(given.getOrElse(() -> DEFAULT));
    if (given.isEmpty() && !runsOnSparkProfile()) {
      return;
    }
    Configurator.setRootLevel(level);
    // A quieter level leaves sparkprune's own lines (executor fallbacks, the job's warnings) at info.
    Configurator.setLevel(OWN_LOGGERS, level.isMoreSpecificThan(Level.INFO) ? Level.INFO : level);
  }

  static Level parse(String text) {
    Level level = Level.toLevel(text.trim().toUpperCase(Locale.ROOT), null);
    ValidationException.check(level != null && level != Level.ALL,
        "Invalid %s %s: use off, error, warn, info, debug or trace", KEY, text);
    return level;
  }

  /** Whether log4j was configured by no file at all, or by Spark's fallback profile. */
  static boolean runsOnSparkProfile() {
    if (!(LogManager.getContext(false) instanceof LoggerContext context)) {
      return false;
    }
    if (context.getConfiguration() instanceof DefaultConfiguration) {
      return true;
    }
    ConfigurationSource source = context.getConfiguration().getConfigurationSource();
    String location = source == null ? null : source.getLocation();
    return location != null && location.contains(SPARK_PROFILES);
  }

  @Override
  public DriverPlugin driverPlugin() {
    return null;
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new ExecutorPlugin() {
      @Override
      public void init(PluginContext context, Map<String, String> extraConf) {
        apply(context.conf());
      }
    };
  }
}
