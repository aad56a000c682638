package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shell entry points: ShellCheck-clean, and the cluster wrapper builds the right spark-submit. */
class TestScripts {
  private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  private static final List<String> SCRIPTS = List.of("bin/sparkprune", "bin/setup-native-blas", "bin/setup-llamacpp-reference",
      "bin/setup-airflow-reference", "deploy/sparkprune-submit", ".ci/run", "conf/getGpusResources.sh");

  @TempDir Path dir;

  /** Exit code and combined output of a process. */
  private record Run(int code, String output) {}

  private static Run run(Map<String, String> environment, String... command) throws IOException, InterruptedException {
    ProcessBuilder builder = new ProcessBuilder(command).directory(ROOT.toFile()).redirectErrorStream(true);
    builder.environment().putAll(environment);
    Process process = builder.start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return new Run(process.exitValue(), output);
  }

  @Test
  void scriptsPassShellCheck() throws IOException, InterruptedException {
    boolean available = Files.isExecutable(Path.of("/usr/bin/shellcheck")) || Files.isExecutable(Path.of("/usr/local/bin/shellcheck"));
    assumeTrue(available, "shellcheck is not installed (.ci/run installs it): skipping the lint of the shell scripts");
    List<String> command = new ArrayList<>(List.of("shellcheck"));
    command.addAll(SCRIPTS);
    Run result = run(Map.of(), command.toArray(String[]::new));
    assertThat(result.code()).as(result.output()).isZero();
  }

  @Test
  void submitWrapperBuildsClusterCommands() throws IOException, InterruptedException {
    Path jar = dir.resolve("sparkprune-1.0.jar");
    Files.writeString(jar, "");
    Map<String, String> environment = Map.of("SPARKPRUNE_DRY_RUN", "1", "SPARKPRUNE_JAR", jar.toString(), "SPARK_HOME", "/opt/spark");
    Run yarn = run(environment, "deploy/sparkprune-submit", "yarn", "--num-executors", "4", "--",
        "prune", "--model", "hdfs:///m", "--out", "hdfs:///o", "--method", "magnitude");
    assertThat(yarn.code()).as(yarn.output()).isZero();
    assertThat(yarn.output())
        .startsWith("/opt/spark/bin/spark-submit --master yarn --deploy-mode cluster")
        .contains("--name sparkprune\\ prune --class dev.sparkprune.jobs.cli.Main")
        .contains("--properties-file " + ROOT.resolve("conf/spark-defaults.conf"))
        .contains("--num-executors 4 " + jar + " prune --model hdfs:///m --out hdfs:///o --method magnitude");

    // Kubernetes: the image's own jar, nothing local to upload.
    Run k8s = run(Map.of("SPARKPRUNE_DRY_RUN", "1", "SPARKPRUNE_IMAGE", "registry/sparkprune:1"),
        "deploy/sparkprune-submit", "k8s://https://k8s:6443", "--", "prune");
    assertThat(k8s.output()).contains("--master k8s://https://k8s:6443 --deploy-mode cluster --conf spark.kubernetes.container.image=registry/sparkprune:1")
        .contains(" local:///opt/sparkprune/sparkprune.jar prune").doesNotContain("--files");
    Run standalone = run(environment, "deploy/sparkprune-submit", "spark://master:7077", "--", "inspect", "hdfs:///m");
    assertThat(standalone.output()).contains("--master spark://master:7077 --deploy-mode cluster --conf spark.master.rest.enabled=false "
        + "--conf spark.standalone.submit.waitAppCompletion=true");

    Run noImage = run(Map.of("SPARKPRUNE_JAR", jar.toString()), "deploy/sparkprune-submit", "k8s://https://k8s:6443", "--", "prune");
    assertThat(noImage.code()).isEqualTo(2);
    assertThat(noImage.output()).contains("Kubernetes needs SPARKPRUNE_IMAGE");
    Run unknown = run(environment, "deploy/sparkprune-submit", "mesos://x", "--", "prune");
    assertThat(unknown.code()).isEqualTo(2);
    assertThat(unknown.output()).contains("unknown master 'mesos://x'");
    assertThat(run(environment, "deploy/sparkprune-submit", "yarn").code()).isEqualTo(2);
  }

  /** The driver's Java options: the module options of spark-defaults.conf first, the user's after them, in one property. */
  @Test
  void submitWrapperPutsTheUsersDriverOptionsAfterTheModuleOptions() throws IOException, InterruptedException {
    Map<String, String> environment = Map.of("SPARKPRUNE_DRY_RUN", "1", "SPARKPRUNE_JAR", "/x.jar", "SPARK_HOME", "/opt/spark");
    Run run = run(environment, "deploy/sparkprune-submit", "spark://m:7077", "--driver-java-options", "-Dmine=1",
        "--conf", "spark.driver.extraJavaOptions=-Dmore=2", "--name", "nightly", "--", "prune");
    String modules = org.apache.spark.launcher.JavaModuleOptions.defaultModuleOptions().replace(" ", "\\ ");
    assertThat(run.output()).contains("--name nightly ").contains("--conf spark.driver.extraJavaOptions=" + modules + "\\ -Dmine=1\\ -Dmore=2 ")
        .doesNotContain("--driver-java-options");
  }

  /**
   * In cluster mode the driver runs in a folder of its own on a worker: every location option of
   * the CLI (label URI or FILE) given as a relative path is made absolute against the submitting
   * folder, comma-separated lists item by item; other values, URIs and client mode are left as given.
   */
  @Test
  void submitWrapperMakesRelativeLocationsAbsoluteInClusterMode() throws IOException, InterruptedException {
    Map<String, String> environment = Map.of("SPARKPRUNE_DRY_RUN", "1", "SPARKPRUNE_JAR", "/x.jar", "SPARK_HOME", "/opt/spark");
    java.util.Set<String> locations = new java.util.TreeSet<>();
    for (picocli.CommandLine command : Main.commandLine().getSubcommands().values()) {
      for (picocli.CommandLine.Model.OptionSpec option : command.getCommandSpec().options()) {
        if (List.of("URI", "FILE", "FILES").contains(option.paramLabel()) && !List.of("bench", "demo").contains(command.getCommandName())) {
          locations.add(option.longestName());
        }
      }
    }
    assertThat(locations).contains("--model", "--out", "--calib", "--manifest", "--out-root");
    List<String> command = new ArrayList<>(List.of("deploy/sparkprune-submit", "spark://m:7077", "--", "prune"));
    for (String option : locations) {
      command.addAll(List.of(option, "data/" + option.substring(2) + ",../up"));
    }
    command.addAll(List.of("--method", "wanda", "--other", "rel/x", "--model=m2"));
    Run cluster = run(environment, command.toArray(String[]::new));
    for (String option : locations) {
      // printf %q writes the comma as \,
      assertThat(cluster.output()).contains(option + " " + ROOT.resolve("data/" + option.substring(2)) + "\\," + ROOT.getParent().resolve("up"));
    }
    assertThat(cluster.output()).contains("--method wanda --other rel/x --model=" + ROOT.resolve("m2"));

    command.add(2, "--deploy-mode");
    command.add(3, "client");
    Run client = run(environment, command.toArray(String[]::new));
    assertThat(client.output()).contains("--deploy-mode client").contains("--model data/model\\,../up");
    Run uris = run(environment, "deploy/sparkprune-submit", "spark://m:7077", "--", "prune", "--model", "hdfs:///m", "--out", "/abs/o");
    assertThat(uris.output()).contains("--model hdfs:///m --out /abs/o");
  }
}
