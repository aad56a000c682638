package dev.sparkprune.jobs.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.SharedData;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The Airflow DAG for real: Airflow and its Apache Spark provider (installed by
 * bin/setup-airflow-reference into .airflow-reference/) run deploy/airflow/sparkprune_dag.py
 * with {@code airflow dags test}, the provider building and running the spark-submit line against
 * the standalone cluster, with the connection, Variables and run conf a platform team would set.
 * The run must succeed, write the local reference's bytes under the DAG's output path and show
 * the task's application name on the master. Skips where Airflow is not installed.
 */
@ExtendWith(StandaloneCluster.Resolver.class)
class AirflowDagIT {
  private static final Path AIRFLOW = LocalReference.ROOT.resolve(".airflow-reference/bin/airflow");
  private static final Duration TIMEOUT = Duration.ofMinutes(8);

  /** Before the cluster is asked for: without Airflow the run skips at no cost. */
  @BeforeAll
  static void airflowIsInstalled() {
    assumeTrue(Files.isExecutable(AIRFLOW), ".airflow-reference is absent (bin/setup-airflow-reference installs Airflow where the "
        + "Python package index is reachable; .ci/run calls it): skipping the DAG run under Airflow");
  }

  @Test
  void theDagPrunesOnTheStandaloneClusterWithTheRunsParams(StandaloneCluster cluster) throws Exception {
    Map<String, String> reference = LocalReference.outputs(cluster);
    Path home = Files.createTempDirectory(Files.createDirectories(Path.of("target").toAbsolutePath()), "airflow-home-");
    Path outRoot = home.resolve("pruned");
    URI master = URI.create(cluster.master());

    Map<String, String> environment = new HashMap<>(cluster.environment());
    environment.put("AIRFLOW_HOME", home.toString());
    environment.put("AIRFLOW__CORE__DAGS_FOLDER", LocalReference.ROOT.resolve("deploy/airflow").toString());
    environment.put("AIRFLOW__CORE__LOAD_EXAMPLES", "False");
    environment.put("AIRFLOW__CORE__UNIT_TEST_MODE", "False");
    // The connection and Variables the DAG's docstring asks for; spark-submit from the cluster's SPARK_HOME.
    environment.put("AIRFLOW_CONN_SPARK_DEFAULT", new ObjectMapper().writeValueAsString(Map.of(
        "conn_type", "spark", "host", "spark://" + master.getHost(), "port", master.getPort())));
    environment.put("AIRFLOW_VAR_SPARKPRUNE_JAR", shadedJar().toString());
    environment.put("AIRFLOW_VAR_SPARKPRUNE_CONF_DIR", LocalReference.ROOT.resolve("conf").toString());
    environment.put("PATH", cluster.sparkHome().resolve("bin") + ":" + System.getenv("PATH"));
    // The reference's task split (4 cores); in client mode spark-submit's JVM is the driver.
    environment.put("SPARK_SUBMIT_OPTS", "-Dspark.default.parallelism=4 -Dspark.executor.memory=768m");

    run(home, environment, AIRFLOW.toString(), "db", "migrate");
    String conf = new ObjectMapper().writeValueAsString(Map.of(
        "model_uri", SharedData.stories260K().toString(), "out_root", outRoot.toString(), "calib_uri", LocalReference.text().toString(),
        "method", "wanda", "sparsity", "0.5", "nsamples", 4, "seqlen", 64));
    String output = run(home, environment, AIRFLOW.toString(), "dags", "test", "sparkprune_daily", "2026-11-02", "--conf", conf);

    Path out = outRoot.resolve("stories260K/20261102/wanda-0.5");
    assertThat(out.resolve("report.json")).as(output).exists();
    assertThat(LocalReference.outputs(out)).isEqualTo(reference);
    JsonNode state = cluster.masterState();
    assertThat(state.path("completedapps").findValuesAsText("name")).contains("sparkprune-sparkprune_daily-20261102");
    // No site setting the run did not set: gpus-per-task is not on the command line.
    assertThat(output).doesNotContain("--gpus-per-task");
  }

  private static Path shadedJar() throws java.io.IOException {
    try (var files = Files.list(Path.of("target"))) {
      return files.filter(path -> path.getFileName().toString().matches("sparkprune-\\d.*\\.jar")).findFirst().orElseThrow().toAbsolutePath();
    }
  }

  private static String run(Path directory, Map<String, String> environment, String... command) throws Exception {
    ClusterProcesses processes = new ClusterProcesses();
    try {
      Path log = Files.createTempFile(directory, "airflow-", ".log");
      ClusterProcesses.Started process = processes.start("airflow", List.of(command), environment, directory, log);
      boolean ended = process.process().waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      assertThat(ended).as(String.join(" ", command) + " did not end in " + TIMEOUT + ": " + process.output()).isTrue();
      assertThat(process.process().exitValue()).as(process.output()).isZero();
      return process.output();
    } finally {
      processes.stopAll();
    }
  }
}
