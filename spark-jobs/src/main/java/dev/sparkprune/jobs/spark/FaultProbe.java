package dev.sparkprune.jobs.spark;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.lang.reflect.InvocationTargetException;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.RuntimeConfig;

/**
 * Named points of a run where a test may inject a fault, and nothing else: the shipped code
 * only calls {@link #at} (a no-op in every real run), and what a fault does (throw, halt) lives
 * in test code. The driver loads one probe per run from the session's {@value #CLASS_KEY} and
 * ships it to the tasks inside the job context.
 *
 * <p>Points: the task kinds {@code embed}, {@code statistics}, {@code advance}, {@code score},
 * {@code masks} and {@code write}, and the driver's {@code publish} (between the two renames).
 */
public interface FaultProbe extends Serializable {
  /** The probe's class: public, with a public constructor taking the {@value #SETTINGS_PREFIX}* entries. */
  String CLASS_KEY = "spark.sparkprune.test.probe-class";

  /** The namespace of the probe's own settings; only read when {@value #CLASS_KEY} is set. */
  String SETTINGS_PREFIX = "spark.sparkprune.test.";

  /** What every real run gets: no fault anywhere. */
  FaultProbe NONE = NoProbe.INSTANCE;

  /** A run reached this point (in a task, or on the driver for {@code publish}). */
  void at(String point);

  /**
   * The probe a session's runtime settings name (where tests set it between runs of one
   * session), or {@link #NONE}.
   */
  static FaultProbe load(RuntimeConfig conf) {
    String name = conf.get(CLASS_KEY, "").trim();
    if (name.isEmpty()) {
      return NONE;
    }
    Map<String, String> settings = new TreeMap<>();
    scala.jdk.javaapi.CollectionConverters.asJava(conf.getAll()).forEach((key, value) -> {
      if (key.startsWith(SETTINGS_PREFIX)) {
        settings.put(key, value);
      }
    });
    try {
      Class<?> type = Class.forName(name, true, Thread.currentThread().getContextClassLoader());
      ValidationException.check(FaultProbe.class.isAssignableFrom(type), "Invalid %s %s: not a FaultProbe", CLASS_KEY, name);
      return (FaultProbe) type.getConstructor(Map.class).newInstance(Map.copyOf(settings));
    } catch (ClassNotFoundException | NoSuchMethodException | InstantiationException | IllegalAccessException e) {
      throw new ValidationException("Invalid " + CLASS_KEY + " " + name + ": " + e, e);
    } catch (InvocationTargetException e) {
      throw new ValidationException("Invalid " + CLASS_KEY + " " + name + ": " + e.getCause(), e.getCause());
    }
  }

  /** The no-op probe; an enum, so it stays one instance after deserialization. */
  enum NoProbe implements FaultProbe {
    INSTANCE;

    @Override
    public void at(String point) {}
  }
}
