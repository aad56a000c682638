package dev.sparkprune.jobs.spark;

import dev.sparkprune.jobs.prune.PruneOptions;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.ValidationException;
import java.util.Optional;
import org.apache.spark.SparkConf;
import org.apache.spark.resource.ExecutorResourceRequest;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.TaskResourceProfile;
import org.junit.jupiter.api.Test;

/** The GPU stages' resource profile for each cluster shape, and the settings it refuses. */
class TestGpuScheduling {
  private static PruneOptions.Builder options() {
    return PruneOptions.builder().model("hdfs:///m").out("hdfs:///o").method(PruningMethod.MAGNITUDE).target(SparsityTarget.unstructured(0.5));
  }

  private static SparkConf conf() {
    return new SparkConf(false).set("spark.task.cpus", "2");
  }

  @Test
  void noGpusAskedForMeansNoProfile() {
    assertThat(GpuScheduling.profile(conf(), "yarn", options().build().gpus())).isEmpty();
  }

  @Test
  void withoutDynamicAllocationTheGpuStagesReuseGpuExecutorsWithATaskOnlyProfile() {
    SparkConf conf = conf().set("spark.executor.resource.gpu.amount", "1");
    ResourceProfile profile = GpuScheduling.profile(conf, "spark://master:7077", options().gpusPerTask(0.25).build().gpus()).orElseThrow();
    assertThat(profile).isInstanceOf(TaskResourceProfile.class);
    assertThat(profile.executorResourcesJMap()).isEmpty();
    assertThat(profile.taskResourcesJMap().get("gpu").amount()).isEqualTo(0.25);
    assertThat(profile.taskResourcesJMap().get("cpus").amount()).isEqualTo(2.0);

    // spark.sparkprune.gpus-per-task is resolved into the options (TestPruneOptionsResolver); the conf key alone asks for nothing here.
    assertThat(GpuScheduling.profile(conf.clone().set("spark.sparkprune.gpus-per-task", "1"), "yarn", options().build().gpus())).isEmpty();

    assertThatThrownBy(() -> GpuScheduling.profile(conf(), "yarn", options().gpusPerTask(1).build().gpus()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("they have 0.0 GPUs: set spark.executor.resource.gpu.amount");
  }

  @Test
  void withDynamicAllocationTheGpuStagesAskForGpuExecutors() {
    SparkConf conf = conf().set("spark.dynamicAllocation.enabled", "true");
    ResourceProfile profile = GpuScheduling.profile(conf, "k8s://https://k8s:6443", options().gpusPerTask(1).gpusPerExecutor(2)
        .gpuDiscoveryScript("/opt/sparkprune/conf/getGpusResources.sh").gpuVendor("nvidia.com").build().gpus()).orElseThrow();
    ExecutorResourceRequest gpu = profile.executorResourcesJMap().get("gpu");
    assertThat(gpu.amount()).isEqualTo(2);
    // The same settings in the same application give the same profile: a batch's models share executors.
    assertThat(GpuScheduling.profile(conf, "k8s://https://k8s:6443", options().gpusPerTask(1).gpusPerExecutor(2)
        .gpuDiscoveryScript("/opt/sparkprune/conf/getGpusResources.sh").gpuVendor("nvidia.com").build().gpus()).orElseThrow()).isSameAs(profile);
    assertThat(GpuScheduling.profile(conf, "k8s://https://k8s:6443", options().gpusPerTask(0.5).gpusPerExecutor(2)
        .gpuDiscoveryScript("/opt/sparkprune/conf/getGpusResources.sh").gpuVendor("nvidia.com").build().gpus()).orElseThrow()).isNotSameAs(profile);
    assertThat(gpu.discoveryScript()).isEqualTo("/opt/sparkprune/conf/getGpusResources.sh");
    assertThat(gpu.vendor()).isEqualTo("nvidia.com");
    assertThat(profile.taskResourcesJMap().get("gpu").amount()).isEqualTo(1.0);

    // Script and vendor default to the executor GPU conf; GPUs per executor to ceil(per task).
    SparkConf withDefaults = conf.clone()
        .set("spark.executor.resource.gpu.discoveryScript", "/conf/getGpusResources.sh").set("spark.executor.resource.gpu.vendor", "nvidia.com");
    ExecutorResourceRequest defaulted =
        GpuScheduling.profile(withDefaults, "yarn", options().gpusPerTask(0.5).build().gpus()).orElseThrow().executorResourcesJMap().get("gpu");
    assertThat(defaulted.amount()).isEqualTo(1);
    assertThat(defaulted.discoveryScript()).isEqualTo("/conf/getGpusResources.sh");

    assertThatThrownBy(() -> GpuScheduling.profile(conf, "yarn", options().gpusPerTask(1).build().gpus()))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("GPU executors need a discovery script");
  }

  @Test
  void localModeAndBadAmountsAreRefused() {
    SparkConf conf = conf().set("spark.executor.resource.gpu.amount", "1");
    for (String master : new String[] {"local", "local[*]", "local[4]", "local[2,4]"}) {
      assertThatThrownBy(() -> GpuScheduling.profile(conf, master, options().gpusPerTask(1).build().gpus()))
          .isInstanceOf(ValidationException.class)
          .hasMessageContaining("--gpus-per-task needs a cluster master");
    }
    assertThat(GpuScheduling.profile(conf, "local-cluster[2,1,1024]", options().gpusPerTask(1).build().gpus())).isPresent();
    assertThatThrownBy(() -> options().gpusPerTask(0.75).build()).hasMessageContaining("Invalid --gpus-per-task 0.75");
    assertThatThrownBy(() -> options().gpusPerTask(-1).build()).hasMessageContaining("Invalid --gpus-per-task -1");
    assertThatThrownBy(() -> options().gpusPerTask(2).gpusPerExecutor(1).build()).hasMessageContaining("less than --gpus-per-task 2");
  }
}
