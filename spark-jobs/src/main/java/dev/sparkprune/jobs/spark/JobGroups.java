package dev.sparkprune.jobs.spark;

import org.apache.spark.JobExecutionStatus;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkJobInfo;
import org.apache.spark.SparkStageInfo;

/** What a failed run does with its own Spark job group before it deletes its staging folder. */
public final class JobGroups {
  /** How long a failed run waits for its tasks to stop before cleaning up anyway. */
  private static final long WAIT_NANOS = 60_000_000_000L;

  private JobGroups() {}

  /**
   * A failed job leaves its other running tasks going (Spark does not interrupt them): one may
   * still write into the staging folder after it is deleted and so recreate it. Cancels the
   * run's job group (no concurrent run's) and waits, bounded, until none of its stages has a
   * task running.
   */
  public static void cancelAndAwait(SparkContext context, String jobGroup) {
    // A context the cluster manager stopped (the application killed on the master) has no tasks
    // left to wait for, and answers every call with IllegalStateException.
    if (context.isStopped()) {
      return;
    }
    // Each job the status tracker still reports running is cancelled by its id, not the group:
    // the tracker learns of a job's end from the listener bus, later than the scheduler, so a job
    // that just failed can still look running; cancelling its group then makes Spark log a warning
    // ("Failed to cancel job group ... Cannot find active jobs") after an ordinary failure, while
    // cancelling a job the scheduler has already ended is a no-op it logs at debug level. Tasks of
    // the failed job may still run, so the wait below is still needed.
    try {
      for (int jobId : runningJobs(context, jobGroup)) {
        context.cancelJob(jobId, "sparkprune: the run failed");
      }
    } catch (IllegalStateException stopped) {
      return;
    }
    long deadline = System.nanoTime() + WAIT_NANOS;
    while (System.nanoTime() < deadline && !context.isStopped()) {
      int running = 0;
      for (int jobId : context.statusTracker().getJobIdsForGroup(jobGroup)) {
        SparkJobInfo job = context.statusTracker().getJobInfo(jobId).getOrElse(() -> null);
        for (int stageId : job == null ? new int[0] : job.stageIds()) {
          SparkStageInfo stage = context.statusTracker().getStageInfo(stageId).getOrElse(() -> null);
          running += stage == null ? 0 : stage.numActiveTasks();
        }
      }
      if (running == 0) {
        return;
      }
      try {
        Thread.sleep(50);
      } catch (InterruptedException interrupted) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private static int[] runningJobs(SparkContext context, String jobGroup) {
    return java.util.Arrays.stream(context.statusTracker().getJobIdsForGroup(jobGroup)).filter(jobId -> {
      SparkJobInfo job = context.statusTracker().getJobInfo(jobId).getOrElse(() -> null);
      return job != null && job.status() == JobExecutionStatus.RUNNING;
    }).toArray();
  }
}
