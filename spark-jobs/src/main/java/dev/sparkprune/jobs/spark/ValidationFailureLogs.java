package dev.sparkprune.jobs.spark;

import dev.sparkprune.tensorio.ValidationException;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.Filter;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.filter.AbstractFilter;
import org.apache.logging.log4j.core.filter.CompositeFilter;

/**
 * Keeps Spark's task-failure logging off the console when the failure is the user's to fix: a
 * {@link ValidationException} thrown in a task (a NaN weight, a token id outside the vocabulary)
 * or a full disk
 * makes Spark log the task's stack trace, the aborted job, every killed sibling task and the
 * aborted Parquet write, 100 to 600 lines before the CLI's own one-line error. Once a Spark or
 * Hadoop log event names either, this filter drops it and every later event of a
 * library logger until the next job starts ({@link #nextJob()}): all of those are the failed
 * job winding down. Other failures keep Spark's log; {@code --verbose} keeps everything.
 */
public final class ValidationFailureLogs {
  /** What a full disk says (ENOSPC), whichever layer reports it: the user's to fix, like bad input. */
  public static final String DISK_FULL = "No space left on device";

  private static final String VALIDATION = ValidationException.class.getName();
  private static final String OWN_LOGGERS = "dev.sparkprune";
  private static final AtomicBoolean ENABLED = new AtomicBoolean();
  private static final AtomicBoolean FAILING = new AtomicBoolean();
  private static final QuietFilter FILTER = new QuietFilter();

  private ValidationFailureLogs() {}

  /**
   * Quiets (or, with {@code verbose}, stops quieting) the console for validation failures. The
   * filter is attached once to every configured logger of the current log4j context.
   */
  public static synchronized void configure(boolean verbose) {
    ENABLED.set(!verbose);
    FAILING.set(false);
    if (verbose || !(LogManager.getContext(false) instanceof LoggerContext context)) {
      return;
    }
    Configuration config = context.getConfiguration();
    boolean added = attach(config.getRootLogger());
    for (LoggerConfig logger : config.getLoggers().values()) {
      added |= attach(logger);
    }
    if (added) {
      context.updateLoggers();
    }
  }

  /** A new job starts: its failures are its own, so library logging speaks again. */
  public static void nextJob() {
    FAILING.set(false);
  }

  private static boolean attach(LoggerConfig logger) {
    Filter existing = logger.getFilter();
    if (existing == FILTER
        || existing instanceof CompositeFilter composite && Arrays.asList(composite.getFiltersArray()).contains(FILTER)) {
      return false;
    }
    // A logger with a filter of its own keeps it; ours goes in front through a composite.
    logger.addFilter(FILTER);
    return true;
  }

  /** Whether an event comes from a library logger and belongs to a validation failure. */
  static boolean quiets(String loggerName, Level level, String message, Throwable thrown) {
    // The console shows libraries' warnings and errors only; sparkprune's own lines always pass.
    if (!ENABLED.get() || loggerName == null || loggerName.startsWith(OWN_LOGGERS) || !level.isMoreSpecificThan(Level.WARN)) {
      return false;
    }
    if (names(message, thrown)) {
      FAILING.set(true);
      return true;
    }
    return FAILING.get();
  }

  /**
   * Whether an event names a validation failure or a full disk. Spark quotes an executor's
   * exception as text ("...: dev.sparkprune...ValidationException: ..."), so the text counts.
   */
  private static boolean names(String message, Throwable thrown) {
    if (isUsersToFix(message)) {
      return true;
    }
    for (Throwable cause = thrown; cause != null; cause = cause.getCause()) {
      if (cause instanceof ValidationException || isUsersToFix(cause.getMessage())) {
        return true;
      }
    }
    return false;
  }

  private static boolean isUsersToFix(String message) {
    return message != null && (message.contains(VALIDATION) || message.contains(DISK_FULL));
  }

  /** Whether a failure, or any of its causes, is a full disk. */
  public static boolean isDiskFull(Throwable error) {
    for (Throwable cause = error; cause != null; cause = cause.getCause()) {
      if (cause.getMessage() != null && cause.getMessage().contains(DISK_FULL)) {
        return true;
      }
    }
    return false;
  }

  /** The log4j side: DENY what {@link #quiets} says, NEUTRAL for everything else. */
  private static final class QuietFilter extends AbstractFilter {
    QuietFilter() {
      super(Result.NEUTRAL, Result.NEUTRAL);
    }

    @Override
    public Result filter(LogEvent event) {
      String message = event.getMessage() == null ? null : event.getMessage().getFormattedMessage();
      return quiets(event.getLoggerName(), event.getLevel(), message, event.getThrown()) ? Result.DENY : Result.NEUTRAL;
    }
  }
}
