package dev.sparkprune.jobs.spark;

import java.util.Objects;
import java.util.Optional;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.resource.ResourceProfile;

/**
 * A run's Spark side, as its stages use it on the driver: the context to start jobs from, the
 * {@link JobContext} every executor function gets, the GPU resource profile of the stages that
 * run models or kernels (when --gpus-per-task asked for one), and the description the Spark UI
 * shows for the jobs that follow ("block 3/6: statistics", "scoring", "write").
 */
public final class JobStages {
  /** Spark's resource name for GPUs, in resource profiles and a task's resources. */
  public static final String GPU = "gpu";

  private final JavaSparkContext jsc;
  private final JobContext context;
  private final Optional<ResourceProfile> gpuProfile;

  public JobStages(JavaSparkContext jsc, JobContext context, Optional<ResourceProfile> gpuProfile) {
    this.jsc = Objects.requireNonNull(jsc, "jsc is null");
    this.context = Objects.requireNonNull(context, "context is null");
    this.gpuProfile = Objects.requireNonNull(gpuProfile, "gpuProfile is null");
  }

  public JavaSparkContext jsc() {
    return jsc;
  }

  /** What the run's executor functions share: model, staging folder, configuration, probe. */
  public JobContext context() {
    return context;
  }

  public Optional<ResourceProfile> gpuProfile() {
    return gpuProfile;
  }

  /** Names the Spark jobs started from this thread from now on, in the UI and the event log. */
  public void describe(String description) {
    jsc.sc().setJobDescription(description);
  }

  /** Marks a calibration or scoring RDD's stage with the GPU profile, when there is one. */
  public <T> JavaRDD<T> onGpus(JavaRDD<T> rdd) {
    gpuProfile.ifPresent(profile -> rdd.rdd().withResources(profile));
    return rdd;
  }

  public <K, V> JavaPairRDD<K, V> onGpus(JavaPairRDD<K, V> rdd) {
    gpuProfile.ifPresent(profile -> rdd.rdd().withResources(profile));
    return rdd;
  }
}
