package dev.sparkprune.jobs.spark;

import dev.sparkprune.tensorio.ValidationException;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.SparkConf;
import org.apache.spark.resource.ExecutorResourceRequests;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.ResourceProfileBuilder;
import org.apache.spark.resource.TaskResourceRequests;

/**
 * Stage-level GPU scheduling: the calibration and scoring stages carry a resource profile asking
 * for {@code --gpus-per-task} GPUs per task; the archive write and the reductions keep the
 * default profile.
 *
 * <p>Two shapes, as Spark supports them on YARN, Kubernetes and standalone:
 *
 * <ul>
 *   <li>with dynamic allocation on, a full profile: new executors with {@code gpusPerExecutor}
 *       GPUs found by the discovery script, of the vendor given (Kubernetes needs
 *       {@code nvidia.com}), released when the stages end;
 *   <li>with it off, a task-only profile: the existing executors, which must already have GPUs
 *       ({@code spark.executor.resource.gpu.amount}), run the GPU stages' tasks with GPU slots.
 * </ul>
 *
 * A fractional amount (at most 0.5) shares one GPU among 1/A concurrent tasks.
 */
public final class GpuScheduling {
  /** Spark's resource name for GPUs, in confs and in {@code TaskContext.resources()}. */
  public static final String GPU = dev.sparkprune.jobs.spark.JobStages.GPU;

  private static final String EXECUTOR_GPU = "spark.executor.resource.gpu.";

  private static final Map<String, ResourceProfile> PROFILES = new ConcurrentHashMap<>();

  private GpuScheduling() {}

  /** What Spark accepts as a task's GPU amount: a whole number, or a fraction of at most 0.5 (1/A tasks share a GPU). */
  public static boolean isTaskAmount(double amount) {
    return amount > 0 && (amount <= 0.5 || amount % 1 == 0);
  }

  private static double number(SparkConf conf, String key) {
    String value = conf.get(key, "0").trim();
    try {
      return Double.parseDouble(value);
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid " + key + " '" + value + "': must be a number");
    }
  }

  /**
   * The profile for the GPU stages, or empty when no GPUs were asked for. The sparkprune settings
   * come resolved in {@code request} (spark.sparkprune.* included); only Spark's own executor
   * and dynamic-allocation settings are read from the conf here.
   */
  public static Optional<ResourceProfile> profile(SparkConf conf, String master, GpuRequest request) {
    double perTask = request.perTask();
    if (perTask == 0) {
      return Optional.empty();
    }
    ValidationException.check(
        !(master.equals("local") || master.startsWith("local[")),
        "--gpus-per-task needs a cluster master (yarn, k8s://..., spark://..., local-cluster[...]): Spark local mode "
            + "gives tasks no GPU resources and the job would wait forever; run without --gpus-per-task locally");
    int taskCpus = conf.getInt("spark.task.cpus", 1);
    TaskResourceRequests task = new TaskResourceRequests().cpus(taskCpus).resource(GPU, perTask);
    ResourceProfileBuilder builder = new ResourceProfileBuilder().require(task);
    double executorGpus = number(conf, EXECUTOR_GPU + "amount");
    String key;
    if (conf.getBoolean("spark.dynamicAllocation.enabled", false)) {
      int perExecutor = request.perExecutor() > 0
          ? request.perExecutor()
          : (int) Math.max(Math.ceil(perTask), executorGpus);
      ValidationException.check(
          perExecutor >= perTask, "Invalid --gpus-per-executor %d: less than --gpus-per-task %s", perExecutor, perTask);
      String script = request.script().orElse(conf.get(EXECUTOR_GPU + "discoveryScript", ""));
      String vendor = request.vendorName().orElse(conf.get(EXECUTOR_GPU + "vendor", ""));
      ValidationException.check(
          !script.isEmpty() || !conf.get("spark.resources.discoveryPlugin", "").isEmpty(),
          "GPU executors need a discovery script: give --gpu-discovery-script (conf/getGpusResources.sh) or set %s",
          EXECUTOR_GPU + "discoveryScript");
      builder.require(new ExecutorResourceRequests().resource(GPU, perExecutor, script, vendor));
      key = String.join("|", conf.get("spark.app.id", ""), "executors", Double.toString(perTask), Integer.toString(taskCpus),
          Integer.toString(perExecutor), script, vendor);
    } else {
      ValidationException.check(
          executorGpus >= perTask,
          "--gpus-per-task %s without dynamic allocation runs on the existing executors, but they have %s GPUs: set "
              + "spark.executor.resource.gpu.amount (and its discoveryScript), or enable spark.dynamicAllocation.enabled "
              + "so the GPU stages get executors of their own",
          perTask, executorGpus);
      key = String.join("|", conf.get("spark.app.id", ""), "tasks", Double.toString(perTask), Integer.toString(taskCpus));
    }
    // One profile per application and settings: each new profile would get executors of its own
    // under dynamic allocation, so the models of a batch share one.
    return Optional.of(PROFILES.computeIfAbsent(key, ignored -> builder.build()));
  }
}
