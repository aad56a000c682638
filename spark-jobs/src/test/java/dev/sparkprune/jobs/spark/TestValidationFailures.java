package dev.sparkprune.jobs.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.sparkprune.tensorio.ValidationException;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Bad input found in a task fails the job after that one attempt, where Spark would retry it
 * {@code spark.task.maxFailures} times (4 here, as in conf/spark-defaults.conf; local[2, 4] is
 * local mode with task retries); another failure still gets its retries.
 */
class TestValidationFailures {
  private static SparkSession spark;

  @BeforeAll
  static void start() {
    // A session an earlier suite left running (local[2]: no retries) would be reused by getOrCreate.
    for (scala.Option<SparkSession> earlier : List.of(SparkSession.getActiveSession(), SparkSession.getDefaultSession())) {
      if (earlier.isDefined()) {
        earlier.get().stop();
      }
    }
    spark = SparkSession.builder().master("local[2,4]").appName("sparkprune-validation-failures").config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate();
    ValidationFailures.install(spark.sparkContext());
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  /** Failed attempts of tasks, by the exception class Spark reports. */
  private static final class Failures extends SparkListener {
    final AtomicInteger validation = new AtomicInteger();
    final AtomicInteger other = new AtomicInteger();

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
      if (end.reason() instanceof ExceptionFailure failure) {
        (failure.className().equals(ValidationException.class.getName()) ? validation : other).incrementAndGet();
      }
    }
  }

  private static Throwable failingJob(RuntimeException error, Failures failures) {
    spark.sparkContext().addSparkListener(failures);
    try {
      return catchThrowable(() -> JavaSparkContext.fromSparkContext(spark.sparkContext()).parallelize(List.of(1, 2, 3, 4), 2)
          .map(value -> {
            if (value == 3) {
              throw error;
            }
            return value;
          }).collect());
    } finally {
      // The listener bus delivers task ends after the job ended.
      try {
        spark.sparkContext().listenerBus().waitUntilEmpty(30_000);
      } catch (java.util.concurrent.TimeoutException e) {
        throw new AssertionError(e);
      }
      spark.sparkContext().removeSparkListener(failures);
    }
  }

  @Test
  void badInputInATaskFailsTheJobWithoutRetries() {
    Failures failures = new Failures();
    Throwable thrown = failingJob(new ValidationException("Invalid weight in layer 3: NaN"), failures);

    assertThat(thrown).isNotNull();
    assertThat(ValidationFailures.find(thrown)).hasValueSatisfying(found -> assertThat(found).hasMessage("Invalid weight in layer 3: NaN"));
    // The stage is cancelled at the first failure's report; a retry already under way may fail once more.
    assertThat(failures.validation.get()).isBetween(1, 2);
  }

  @Test
  void otherFailuresAreStillRetried() {
    Failures failures = new Failures();
    Throwable thrown = failingJob(new IllegalStateException("a lost disk"), failures);

    assertThat(thrown).hasMessageContaining("a lost disk");
    assertThat(ValidationFailures.find(thrown)).isEmpty();
    assertThat(failures.other.get()).isEqualTo(4);
  }
}
