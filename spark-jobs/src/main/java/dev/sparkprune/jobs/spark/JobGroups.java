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
    // A group with no running job has nothing to cancel (Spark would log a warning saying so after
    // every failure); tasks of its failed job may still run, so the wait below is still needed.
    try {
      if (hasRunningJob(context, jobGroup)) {
        context.cancelJobGroup(jobGroup);
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

  private static boolean hasRunningJob(SparkContext context, String jobGroup) {
    for (int jobId : context.statusTracker().getJobIdsForGroup(jobGroup)) {
      SparkJobInfo job = context.statusTracker().getJobInfo(jobId).getOrElse(() -> null);
      if (job != null && job.status() == JobExecutionStatus.RUNNING) {
        return true;
      }
    }
    return false;
  }
}
