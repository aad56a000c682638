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
  private static final List<String> SCRIPTS = List.of("bin/sparkprune", "bin/setup-native-blas", "bin/setup-llamacpp-reference", "deploy/sparkprune-submit", ".ci/run", "conf/getGpusResources.sh");

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
        .contains("--class dev.sparkprune.jobs.cli.Main")
        .contains("--properties-file " + ROOT.resolve("conf/spark-defaults.conf"))
        .contains("--num-executors 4 " + jar + " prune --model hdfs:///m --out hdfs:///o --method magnitude");

    Run k8s = run(Map.of("SPARKPRUNE_DRY_RUN", "1", "SPARKPRUNE_JAR", jar.toString(), "SPARKPRUNE_IMAGE", "registry/sparkprune:1"),
        "deploy/sparkprune-submit", "k8s://https://k8s:6443", "--", "prune");
    assertThat(k8s.output()).contains("--master k8s://https://k8s:6443 --deploy-mode cluster --conf spark.kubernetes.container.image=registry/sparkprune:1");
    Run standalone = run(environment, "deploy/sparkprune-submit", "spark://master:7077", "--", "inspect", "hdfs:///m");
    assertThat(standalone.output()).contains("--master spark://master:7077 --deploy-mode cluster");

    Run noImage = run(Map.of("SPARKPRUNE_JAR", jar.toString()), "deploy/sparkprune-submit", "k8s://https://k8s:6443", "--", "prune");
    assertThat(noImage.code()).isEqualTo(2);
    assertThat(noImage.output()).contains("Kubernetes needs SPARKPRUNE_IMAGE");
    Run unknown = run(environment, "deploy/sparkprune-submit", "mesos://x", "--", "prune");
    assertThat(unknown.code()).isEqualTo(2);
    assertThat(unknown.output()).contains("unknown master 'mesos://x'");
    assertThat(run(environment, "deploy/sparkprune-submit", "yarn").code()).isEqualTo(2);
  }
}
