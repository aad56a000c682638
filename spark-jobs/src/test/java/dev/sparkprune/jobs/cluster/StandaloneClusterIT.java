package dev.sparkprune.jobs.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.SharedData;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * sparkprune on a real standalone cluster, run exactly as deploy/README.md documents it:
 * {@code deploy/sparkprune-submit} in cluster and client mode and {@code bin/sparkprune --master
 * spark://...}, with relative and absolute paths, local and {@code hdfs://} archives. Every run
 * must give the bytes a local run gives (the masks' Parquet files and the pruned archive), exit
 * non-zero when it fails, keep the console to the job's own lines, and show its name on the
 * master. One run loses an executor half way and still gives the same bytes.
 *
 * <p>The model is stories260K from ../shared with 4 calibration samples of 64 tokens; every
 * cluster run sets {@code spark.default.parallelism=4} (the executors' cores), so its scoring tasks
 * (and so its mask files) are cut as in the local reference on {@code local[4]}.
 */
@ExtendWith(StandaloneCluster.Resolver.class)
class StandaloneClusterIT {
  private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  private static final Duration RUN_TIMEOUT = Duration.ofMinutes(6);
  private static final ObjectMapper JSON = new ObjectMapper();

  private static StandaloneCluster cluster;
  private static Path work;
  private static Map<String, String> reference;

  /** Exit code and console of one command. */
  record Run(int code, String output) {
    List<String> lines() {
      return output.lines().toList();
    }
  }

  @BeforeAll
  static void startClusterAndPruneLocally(StandaloneCluster standalone) throws Exception {
    cluster = standalone;
    work = Files.createTempDirectory(Files.createDirectories(Path.of("target").toAbsolutePath()), "standalone-runs-");
    reference = LocalReference.outputs(cluster);
  }

  static Path text() {
    return LocalReference.text();
  }

  static Map<String, String> outputs(Path out) throws IOException {
    return LocalReference.outputs(out);
  }

  /** Runs a command in a folder with the cluster's environment; its processes are stopped if it outlives the timeout. */
  static Run run(Path directory, String... command) throws IOException, InterruptedException {
    return run(directory, Map.of(), command);
  }

  static Run run(Path directory, Map<String, String> extra, String... command) throws IOException, InterruptedException {
    ClusterProcesses.Started process = start(directory, extra, command);
    if (!process.process().waitFor(RUN_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
      ClusterProcesses.stop(process);
      throw new AssertionError(String.join(" ", command) + " did not end in " + RUN_TIMEOUT + ": " + process.output());
    }
    return new Run(process.process().exitValue(), process.output());
  }

  static ClusterProcesses.Started start(Path directory, Map<String, String> extra, String... command) throws IOException {
    Map<String, String> environment = new HashMap<>(cluster.environment());
    environment.putAll(extra);
    Path log = Files.createTempFile(work, "console-", ".log");
    return cluster.processes().start(command[0], List.of(command), environment, directory, log);
  }

  /** deploy/sparkprune-submit against the cluster, as documented, with the test's resources and a fixed parallelism. */
  static String[] submit(List<String> submitOptions, String... prune) {
    List<String> command = new ArrayList<>(List.of(ROOT.resolve("deploy/sparkprune-submit").toString(), cluster.master()));
    command.addAll(submitOptions);
    command.addAll(List.of("--driver-memory", "512m", "--executor-memory", "768m", "--conf", "spark.default.parallelism=4", "--"));
    command.addAll(List.of(prune));
    return command.toArray(String[]::new);
  }

  static List<String> pruneArgs(String model, String calib, String out) {
    return List.of("prune", "--model", model, "--out", out, "--method", "wanda", "--calib", calib, "--nsamples", "4", "--seqlen", "64");
  }

  /** A relative path from one folder to another, as a user would type it. */
  static String relative(Path from, Path to) {
    return from.toAbsolutePath().normalize().relativize(to.toAbsolutePath().normalize()).toString();
  }

  private static JsonNode application(String name) throws IOException, InterruptedException {
    JsonNode state = cluster.awaitMaster(master -> find(master, name) != null, Duration.ofSeconds(30));
    return find(state, name);
  }

  private static JsonNode find(JsonNode master, String name) {
    for (String list : List.of("activeapps", "completedapps")) {
      for (JsonNode app : master.path(list)) {
        if (app.path("name").asText().equals(name)) {
          return app;
        }
      }
    }
    return null;
  }

  private static JsonNode report(Path out) throws IOException {
    return JSON.readTree(Files.readString(out.resolve("report.json")));
  }

  /**
   * Client mode from a folder of its own with every path relative (as README's examples): the
   * executors run elsewhere, so they must get the paths the driver qualified. The console holds
   * the job's progress and summary only, and the master lists the application under --name.
   */
  @Test
  void clientModeWithRelativePathsGivesTheLocalBytesQuietlyUnderItsName() throws Exception {
    Path cwd = Files.createDirectories(work.resolve("client-relative"));
    List<String> prune = pruneArgs(relative(cwd, SharedData.stories260K()), relative(cwd, text()), "pruned");
    Run client = run(cwd, submit(List.of("--deploy-mode", "client", "--name", "nightly-prune-client"), prune.toArray(String[]::new)));

    assertThat(client.code()).as(client.output()).isZero();
    assertThat(outputs(cwd.resolve("pruned"))).isEqualTo(reference);
    // The job's lines, the summary table and its totals; no library logging, no stack trace.
    List<String> other = client.lines().stream().filter(line -> !line.startsWith("[") && !isSummary(line)).toList();
    assertThat(other).as(client.output()).allMatch(line -> !line.contains(" INFO ") && !line.startsWith("\tat ")).hasSizeLessThanOrEqualTo(3);
    assertThat(client.lines()).as(client.output()).anyMatch(line -> line.matches("\\[ *[0-9.]+s\\] published file:.*/client-relative/pruned"));
    JsonNode app = application("nightly-prune-client");
    assertThat(app.path("state").asText()).isEqualTo("FINISHED");
    // report.json records the paths as the executors used them: qualified, one spelling per file.
    JsonNode configuration = report(cwd.resolve("pruned")).path("configuration");
    assertThat(configuration.path("model").asText()).isEqualTo("file:" + SharedData.stories260K());
  }

  private static boolean isSummary(String line) {
    return line.startsWith("block ") || line.matches("\\d+\\s+\\S+\\s+\\d+ x \\d+.*") || line.startsWith("total:") || line.startsWith("scored on ");
  }

  /**
   * The documented cluster mode: the driver runs on a worker (in a folder of its own), the model
   * is given relative to the submitting shell's folder, the output goes to HDFS; the wrapper waits
   * for the driver and exits 0 because it FINISHED.
   */
  @Test
  void clusterModeWithARelativeModelAndAnHdfsOutputGivesTheLocalBytes() throws Exception {
    Path cwd = Files.createDirectories(work.resolve("cluster-relative"));
    String out = cluster.hdfs() + "/pruned/cluster-mode";
    List<String> prune = pruneArgs(relative(cwd, SharedData.stories260K()), relative(cwd, text()), out);
    Run submitted = run(cwd, submit(List.of("--name", "nightly-prune-cluster"), prune.toArray(String[]::new)));

    assertThat(submitted.code()).as(submitted.output()).isZero();
    assertThat(submitted.output()).containsPattern("sparkprune-submit: driver-\\S+ FINISHED");
    assertThat(outputs(fromHdfs(out, work.resolve("cluster-relative-copy")))).isEqualTo(reference);
    assertThat(application("nightly-prune-cluster").path("state").asText()).isEqualTo("FINISHED");
  }

  private static Path fromHdfs(String location, Path local) throws IOException {
    Configuration conf = new Configuration();
    org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(location);
    try (FileSystem fs = FileSystem.newInstance(path.toUri(), conf)) {
      fs.copyToLocalFile(false, path, new org.apache.hadoop.fs.Path(local.toUri()), true);
    }
    return local;
  }

  private static String toHdfs(Path local, String location) throws IOException {
    org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(location);
    try (FileSystem fs = FileSystem.newInstance(path.toUri(), new Configuration())) {
      if (!fs.exists(path)) {
        fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(local.toUri()), path);
      }
    }
    return location;
  }

  /**
   * Client mode on an archive and text in HDFS, absolute output path; one executor is killed
   * while the blocks are being pruned. Spark replaces it, recomputes what it held, and the output
   * is still the local run's, byte for byte.
   */
  @Test
  void anExecutorKilledMidRunOnAnHdfsArchiveChangesNoByte() throws Exception {
    String model = toHdfs(SharedData.stories260K(), cluster.hdfs() + "/models/stories260K");
    String calib = toHdfs(text(), cluster.hdfs() + "/text/tinystories.txt");
    Path out = work.resolve("killed-executor/pruned");
    ClusterProcesses.Started submitted = start(work, Map.of(),
        submit(List.of("--deploy-mode", "client", "--name", "prune-losing-an-executor"), pruneArgs(model, calib, out.toString()).toArray(String[]::new)));
    StandaloneCluster.awaitLog(submitted, Pattern.compile("(block 1/5: calibrated)"));
    ProcessHandle executor = executorOf("prune-losing-an-executor");
    executor.destroyForcibly();
    assertThat(executor.onExit().get(30, TimeUnit.SECONDS).isAlive()).isFalse();

    assertThat(submitted.process().waitFor(RUN_TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as(submitted.output()).isTrue();
    assertThat(submitted.process().exitValue()).as(submitted.output()).isZero();
    assertThat(outputs(out)).isEqualTo(reference);
  }

  /** One executor JVM of the named application, from the workers' child processes. */
  private static ProcessHandle executorOf(String name) throws IOException, InterruptedException {
    String id = application(name).path("id").asText();
    for (ClusterProcesses.Started worker : cluster.workers()) {
      for (ProcessHandle child : worker.process().toHandle().descendants().toList()) {
        String arguments = String.join(" ", child.info().arguments().orElse(new String[0]));
        if (arguments.contains("CoarseGrainedExecutorBackend") && arguments.contains(id)) {
          return child;
        }
      }
    }
    throw new AssertionError("No executor process of " + name + " (" + id + ") under the workers");
  }

  /**
   * An application the master kills (its web UI's kill link) fails non-zero and leaves no
   * staging folder: the stopped SparkContext no longer keeps the run from cleaning up.
   */
  @Test
  void aRunTheMasterKillsFailsAndLeavesNoStagingFolder() throws Exception {
    Path parent = Files.createDirectories(work.resolve("killed-by-master"));
    ClusterProcesses.Started submitted = start(parent, Map.of(), submit(List.of("--deploy-mode", "client", "--name", "prune-killed-by-master"),
        pruneArgs(SharedData.stories260K().toString(), text().toString(), parent.resolve("pruned").toString()).toArray(String[]::new)));
    StandaloneCluster.awaitLog(submitted, Pattern.compile("(block 1/5: calibrated)"));
    cluster.killApplication(application("prune-killed-by-master").path("id").asText());

    assertThat(submitted.process().waitFor(RUN_TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as(submitted.output()).isTrue();
    assertThat(submitted.process().exitValue()).as(submitted.output()).isNotZero();
    try (var siblings = Files.list(parent)) {
      assertThat(siblings.map(path -> path.getFileName().toString()).toList()).as(submitted.output()).noneMatch(name -> name.contains(".staging-"));
    }
  }

  /**
   * The local launcher with a cluster master ships the application jar (executors have no
   * sparkprune class otherwise) and gives the local bytes.
   */
  @Test
  void theLocalLauncherWithASparkMasterShipsTheJar() throws Exception {
    Path out = work.resolve("launcher/pruned");
    List<String> command = new ArrayList<>(List.of(ROOT.resolve("bin/sparkprune").toString()));
    command.addAll(pruneArgs(SharedData.stories260K().toString(), text().toString(), out.toString()));
    command.addAll(List.of("--master", cluster.master()));
    Run launcher = run(work, Map.of("SPARKPRUNE_JAVA_OPTS", "-Dspark.default.parallelism=4 -Dspark.executor.memory=768m"),
        command.toArray(String[]::new));

    assertThat(launcher.code()).as(launcher.output()).isZero();
    assertThat(outputs(out)).isEqualTo(reference);
  }

  /**
   * Bad input exits non-zero in both modes: 2 with the one-line error in client mode (the driver
   * is the submitting process), 1 in cluster mode (the master records only that the driver
   * FAILED; its one-line error is in the driver's log on the worker).
   */
  @Test
  void aFailingRunExitsNonZeroInBothModes() throws Exception {
    Path cwd = Files.createDirectories(work.resolve("failing"));
    String[] prune = pruneArgs("no-such-model", relative(cwd, text()), "pruned").toArray(String[]::new);

    Run client = run(cwd, submit(List.of("--deploy-mode", "client"), prune));
    assertThat(client.code()).as(client.output()).isEqualTo(2);
    assertThat(client.output()).contains("sparkprune: error: ").contains("no-such-model").doesNotContain("\tat ");

    Run clustered = run(cwd, submit(List.of("--name", "failing-in-cluster-mode"), prune));
    assertThat(clustered.code()).as(clustered.output()).isEqualTo(1);
    String driver = Pattern.compile("(driver-\\d{14}-\\d{4})").matcher(clustered.output()).results().findFirst().orElseThrow().group(1);
    assertThat(clustered.output()).contains("sparkprune-submit: error: " + driver + " FAILED");
    assertThat(driverLog(driver)).contains("sparkprune: error: ").contains("no-such-model");
  }

  /** The driver's stderr in its folder on whichever worker ran it. */
  private static String driverLog(String driver) throws IOException {
    for (int worker = 1; worker <= StandaloneCluster.WORKERS; worker++) {
      Path log = cluster.workerFolder(worker).resolve(driver).resolve("stderr");
      if (Files.exists(log)) {
        return Files.readString(log, StandardCharsets.UTF_8);
      }
    }
    throw new AssertionError("No worker has a folder for " + driver);
  }
}
