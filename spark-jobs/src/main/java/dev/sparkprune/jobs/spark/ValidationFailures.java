package dev.sparkprune.jobs.spark;

import dev.sparkprune.tensorio.ValidationException;
import java.util.Collections;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.SparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;

/**
 * Bad input found inside a task (a NaN weight, a token id outside the vocabulary) fails its job
 * at once. Spark retries a failed task up to {@code spark.task.maxFailures} times, which helps
 * with a lost executor but only repeats a validation failure, each time after the same work.
 * This listener sees the task's {@link ValidationException}, cancels the task's stage and keeps
 * the exception under an id that the cancellation's message carries; the driver code that
 * catches the job's failure gets the exception back with {@link #find}.
 */
public final class ValidationFailures extends SparkListener {
  private static final String MARK = "sparkprune-validation-";
  private static final Pattern ID = Pattern.compile(Pattern.quote(MARK) + "\\d+");
  private static final AtomicLong IDS = new AtomicLong();
  /** Failures by id; one per failed stage, so a handful per JVM. */
  private static final Map<String, ValidationException> FAILURES = new ConcurrentHashMap<>();
  private static final Set<SparkContext> INSTALLED = Collections.newSetFromMap(new WeakHashMap<>());

  private final SparkContext context;
  private final Set<Integer> cancelledStages = ConcurrentHashMap.newKeySet();

  private ValidationFailures(SparkContext context) {
    this.context = context;
  }

  /** Listens on the context's jobs; once per context. */
  public static void install(SparkContext context) {
    synchronized (INSTALLED) {
      if (INSTALLED.add(context)) {
        context.addSparkListener(new ValidationFailures(context));
      }
    }
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd end) {
    if (!(end.reason() instanceof ExceptionFailure failure) || !failure.className().equals(ValidationException.class.getName())) {
      return;
    }
    if (!cancelledStages.add(end.stageId())) {
      return;
    }
    Throwable thrown = failure.exception().isDefined() ? failure.exception().get() : null;
    ValidationException error = thrown instanceof ValidationException validation
        ? validation : new ValidationException(failure.description());
    String id = MARK + IDS.incrementAndGet();
    FAILURES.put(id, error);
    if (!context.isStopped()) {
      context.cancelStage(end.stageId(), id + ": bad input, not retried: " + error.getMessage());
    }
  }

  /**
   * The validation failure behind an error: a {@link ValidationException} among its causes, or
   * the one whose stage this listener cancelled.
   */
  public static Optional<ValidationException> find(Throwable error) {
    for (Throwable cause = error; cause != null; cause = cause.getCause()) {
      if (cause instanceof ValidationException validation) {
        return Optional.of(validation);
      }
      Matcher id = cause.getMessage() == null ? null : ID.matcher(cause.getMessage());
      if (id != null && id.find() && FAILURES.containsKey(id.group())) {
        return Optional.of(FAILURES.get(id.group()));
      }
    }
    return Optional.empty();
  }
}
