package dev.sparkprune.jobs.spark;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import org.apache.logging.log4j.Level;
import org.apache.spark.SparkException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Which log events the console filter drops: a validation failure's, until the next job. */
class TestValidationFailureLogs {
  private static final String TASK_SET = "org.apache.spark.scheduler.TaskSetManager";

  @AfterEach
  void reset() {
    ValidationFailureLogs.configure(false);
  }

  @Test
  void aValidationFailureAndTheFailedJobsWindDownAreDroppedUntilTheNextJob() {
    ValidationFailureLogs.configure(false);
    // Before any failure, Spark's warnings pass (a lost executor is worth seeing).
    assertThat(ValidationFailureLogs.quiets(TASK_SET, Level.WARN, "Lost executor 1 on host: heartbeat timed out", null)).isFalse();
    // Spark quotes the executor's exception as text in "Lost task" ...
    assertThat(ValidationFailureLogs.quiets(TASK_SET, Level.WARN,
        "Lost task 19.0 in stage 0.0 (TID 19): dev.sparkprune.tensorio.ValidationException: Cannot prune layer x: weight [3, 5] is NaN", null))
        .isTrue();
    // ... then the abort and cancelled tasks, which do not name it, are part of the same failure.
    assertThat(ValidationFailureLogs.quiets(TASK_SET, Level.ERROR, "Task 19 in stage 0.0 failed 1 times; aborting job", null)).isTrue();
    assertThat(ValidationFailureLogs.quiets("org.apache.hadoop.mapreduce.lib.output.FileOutputCommitter", Level.WARN, "Could not delete x", null))
        .isTrue();
    // sparkprune's own lines always pass, and so does what the console does not show anyway.
    assertThat(ValidationFailureLogs.quiets("dev.sparkprune.jobs.prune.PruneJob", Level.WARN, "fell back to the CPU", null)).isFalse();
    assertThat(ValidationFailureLogs.quiets(TASK_SET, Level.INFO, "Finished task 1.0", null)).isFalse();

    ValidationFailureLogs.nextJob();
    assertThat(ValidationFailureLogs.quiets(TASK_SET, Level.ERROR, "Task 3 in stage 7.0 failed 4 times; aborting job", null)).isFalse();
  }

  @Test
  void theExceptionIsFoundInTheThrownChainToo() {
    ValidationFailureLogs.configure(false);
    Throwable wrapped = new SparkException("Job aborted", new ValidationException("Invalid calibration row 3"));
    assertThat(ValidationFailureLogs.quiets("org.apache.spark.executor.Executor", Level.ERROR, "Exception in task 0.0", wrapped)).isTrue();
    ValidationFailureLogs.nextJob();
    assertThat(ValidationFailureLogs.quiets("org.apache.spark.executor.Executor", Level.ERROR, "Exception in task 0.0", new IOException("disk")))
        .isFalse();
  }

  @Test
  void aFullDiskIsQuietedAsBadInputIs() {
    ValidationFailureLogs.configure(false);
    Throwable full = new SparkException("Job aborted", new IOException("No space left on device"));
    assertThat(ValidationFailureLogs.isDiskFull(full)).isTrue();
    assertThat(ValidationFailureLogs.isDiskFull(new IOException("Connection reset"))).isFalse();
    assertThat(ValidationFailureLogs.quiets("org.apache.spark.executor.Executor", Level.ERROR, "Exception in task 3.0", full)).isTrue();
  }

  @Test
  void verboseKeepsEverything() {
    ValidationFailureLogs.configure(true);
    assertThat(ValidationFailureLogs.quiets(TASK_SET, Level.WARN, "Lost task 1.0: dev.sparkprune.tensorio.ValidationException: x", null))
        .isFalse();
  }
}
