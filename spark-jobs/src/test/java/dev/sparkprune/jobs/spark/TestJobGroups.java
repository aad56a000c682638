package dev.sparkprune.jobs.spark;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.SparkTestBase;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;

/**
 * A failed run's cleanup cancels what its job group still runs, by job, and returns once no task
 * of the group is active: a job whose two tasks would sleep for two minutes is cancelled and its
 * tasks gone well before that.
 */
class TestJobGroups extends SparkTestBase {
  @Test
  void theGroupsRunningJobIsCancelledAndItsTasksAwaited() throws Exception {
    SparkContext context = spark.sparkContext();
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(context);
    String group = "test-job-groups-" + System.nanoTime();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Thread runner = new Thread(() -> {
      jsc.setJobGroup(group, "a job that sleeps", true);
      try {
        jsc.parallelize(List.of(1, 2), 2).map(x -> {
          Thread.sleep(120_000);
          return x;
        }).collect();
      } catch (Throwable t) {
        failure.set(t);
      }
    });
    runner.start();
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (activeTasks(context, group) < 2 && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertThat(activeTasks(context, group)).as("tasks of the sleeping job").isEqualTo(2);

    long start = System.nanoTime();
    JobGroups.cancelAndAwait(context, group);
    assertThat(activeTasks(context, group)).isZero();
    assertThat((System.nanoTime() - start) / 1e9).as("seconds to cancel and await").isLessThan(60);
    runner.join(60_000);
    assertThat(runner.isAlive()).isFalse();
    assertThat(failure.get()).as("the job's failure").isNotNull().hasMessageContaining("cancelled");
  }

  private static int activeTasks(SparkContext context, String group) {
    int running = 0;
    for (int jobId : context.statusTracker().getJobIdsForGroup(group)) {
      var job = context.statusTracker().getJobInfo(jobId);
      if (job.isDefined()) {
        for (int stageId : job.get().stageIds()) {
          var stage = context.statusTracker().getStageInfo(stageId);
          running += stage.isDefined() ? ((SparkStageInfo) stage.get()).numActiveTasks() : 0;
        }
      }
    }
    return running;
  }
}
