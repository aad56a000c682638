package dev.sparkprune.jobs.prune.plan;

import dev.sparkprune.scoring.backend.ComputeBackends;
import java.io.Serializable;

/** Where a task ran, for the report: the executor, the GPU Spark assigned to it, and the backend that did the work. */
public final class Placement implements Serializable {
  private static final long serialVersionUID = 1L;

  public final String executor;
  /** The GPU addresses Spark assigned to the task, comma-separated; "" without any. */
  public final String gpu;
  public final String backend;
  /** Why a task given a GPU ran on the CPU, "" otherwise. */
  public final String fallbackReason;

  public Placement(String executor, String gpu, String backend, String fallbackReason) {
    this.executor = executor;
    this.gpu = gpu;
    this.backend = backend;
    this.fallbackReason = fallbackReason;
  }

  /** The running task's placement: its executor, its GPUs and the backend chosen for them. */
  public static Placement of(ComputeBackends.Choice choice) {
    return new Placement(
        executorId(), String.join(",", dev.sparkprune.jobs.spark.JobContext.taskGpus()), choice.backend().description(), choice.fallbackReason());
  }

  private static String executorId() {
    org.apache.spark.SparkEnv env = org.apache.spark.SparkEnv.get();
    return env == null ? "" : env.executorId();
  }
}
