package dev.sparkprune.jobs.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * A real Spark standalone cluster on loopback, as a platform team runs one, from the Spark jars
 * the build already has: a master and two workers, each a JVM of its own started by Spark's own
 * launcher ({@code org.apache.spark.launcher.Main}) through a {@code SPARK_HOME} stand-in whose
 * {@code jars/} links the Maven jars of Spark and Hadoop (not sparkprune's: executors must get
 * those from the application jar, as on a real cluster), and a real HDFS in a process of its own.
 * Ports are ephemeral, everything binds 127.0.0.1. One cluster serves every test class that asks
 * for it ({@link Resolver}); every process is stopped by id when the tests end or the JVM exits.
 */
public final class StandaloneCluster implements AutoCloseable {
  static final int WORKERS = 2;
  static final int CORES_PER_WORKER = 2;
  private static final Duration START_TIMEOUT = Duration.ofMinutes(3);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

  /** The stand-in's bin/spark-class: Spark's launcher prints the command (after NUL and newline, each word NUL-ended), this runs it. */
  private static final String SPARK_CLASS = String.join("\n",
      "#!/usr/bin/env bash",
      "# Test stand-in for Spark's bin/spark-class: Spark's own launcher builds the command to run.",
      "set -euo pipefail",
      "SPARK_HOME=\"$(cd \"$(dirname \"${BASH_SOURCE[0]}\")/..\" && pwd)\"",
      "export SPARK_HOME SPARK_SCALA_VERSION=2.13",
      "mapfile -d '' parts < <(java -Xmx128m -cp \"$SPARK_HOME/jars/*\" org.apache.spark.launcher.Main \"$@\"; printf '%d\\0' $?)",
      "status=\"${parts[${#parts[@]}-1]}\"",
      "[[ -z \"${parts[0]}\" ]] || printf '%s' \"${parts[0]}\" >&2",
      "[[ \"$status\" == 0 && ${#parts[@]} -gt 2 ]] || exit \"$((status == 0 ? 1 : status))\"",
      "command=(\"${parts[@]:1:${#parts[@]}-2}\")",
      "command[0]=\"${command[0]#$'\\n'}\"",
      "exec \"${command[@]}\"",
      "");

  private static final String SPARK_SUBMIT = String.join("\n",
      "#!/usr/bin/env bash",
      "exec \"$(dirname \"${BASH_SOURCE[0]}\")/spark-class\" org.apache.spark.deploy.SparkSubmit \"$@\"",
      "");

  private final Path dir;
  private final Path sparkHome;
  private final ClusterProcesses processes = new ClusterProcesses();
  private final List<ClusterProcesses.Started> workers = new ArrayList<>();
  private String master;
  private String masterUi;
  private String hdfs;

  private StandaloneCluster(Path dir) {
    this.dir = dir;
    this.sparkHome = dir.resolve("spark-home");
  }

  /** Starts the master, the workers and HDFS; everything it started is stopped if it fails. */
  static StandaloneCluster start(Path dir) throws IOException, InterruptedException {
    StandaloneCluster cluster = new StandaloneCluster(dir);
    try {
      cluster.writeSparkHome();
      ClusterProcesses.Started hdfs = cluster.startHdfs();
      cluster.startMaster();
      for (int i = 1; i <= WORKERS; i++) {
        cluster.startWorker(i);
      }
      cluster.awaitWorkers();
      cluster.hdfs = awaitFile(dir.resolve("hdfs/uri"), hdfs);
      return cluster;
    } catch (IOException | InterruptedException | RuntimeException | Error e) {
      cluster.close();
      throw e;
    }
  }

  public String master() {
    return master;
  }

  /** The HDFS root, e.g. hdfs://127.0.0.1:34567. */
  public String hdfs() {
    return hdfs;
  }

  public Path sparkHome() {
    return sparkHome;
  }

  /** What a process needs to use the cluster: SPARK_HOME, and loopback for every Spark JVM it starts. */
  public Map<String, String> environment() {
    Map<String, String> environment = new HashMap<>();
    environment.put("SPARK_HOME", sparkHome.toString());
    environment.put("SPARK_SCALA_VERSION", "2.13");
    environment.put("SPARK_LOCAL_IP", "127.0.0.1");
    environment.put("SPARK_CONF_DIR", sparkHome.resolve("conf").toString());
    return environment;
  }

  ClusterProcesses processes() {
    return processes;
  }

  List<ClusterProcesses.Started> workers() {
    return workers;
  }

  /** A worker's folder: its drivers' and executors' folders with their stdout and stderr. */
  Path workerFolder(int number) {
    return dir.resolve("work-" + number);
  }

  /** The master's state as its web UI serves it as JSON: workers, applications, drivers. */
  public JsonNode masterState() throws IOException, InterruptedException {
    HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(URI.create(masterUi + "/json/")).timeout(Duration.ofSeconds(20)).build(),
        HttpResponse.BodyHandlers.ofString());
    return JSON.readTree(response.body());
  }

  /** Asks the master, as its web UI's kill link does, to kill an application. */
  public void killApplication(String id) throws IOException, InterruptedException {
    HttpRequest request = HttpRequest.newBuilder(URI.create(masterUi + "/app/kill/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .POST(HttpRequest.BodyPublishers.ofString("id=" + id + "&terminate=true")).timeout(Duration.ofSeconds(20)).build();
    HTTP.send(request, HttpResponse.BodyHandlers.discarding());
  }

  /** The stand-in SPARK_HOME: jars/ links Spark's and Hadoop's Maven jars, bin/ has spark-class and spark-submit. */
  private void writeSparkHome() throws IOException {
    Path jars = Files.createDirectories(sparkHome.resolve("jars"));
    Files.createDirectories(sparkHome.resolve("conf"));
    Files.createDirectories(sparkHome.resolve("bin"));
    for (String entry : sparkClasspath()) {
      Path jar = Path.of(entry);
      Path link = jars.resolve(jar.getFileName());
      if (!Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
        Files.createSymbolicLink(link, jar);
      }
    }
    writeScript(sparkHome.resolve("bin/spark-class"), SPARK_CLASS);
    writeScript(sparkHome.resolve("bin/spark-submit"), SPARK_SUBMIT);
  }

  /**
   * Spark's and Hadoop's jars: the local launcher's classpath (Maven's compile and provided
   * scopes) without this project's modules and the libraries only sparkprune uses.
   */
  static List<String> sparkClasspath() throws IOException {
    Path file = Path.of("target/local-classpath.txt");
    if (!Files.isRegularFile(file)) {
      throw new IllegalStateException("target/local-classpath.txt is missing: run the real-cluster tests with mvn verify (after package)");
    }
    Path root = Path.of("..").toAbsolutePath().normalize();
    List<String> jars = new ArrayList<>();
    for (String entry : Files.readString(file).trim().split(java.io.File.pathSeparator)) {
      boolean own = Path.of(entry).toAbsolutePath().normalize().startsWith(root);
      if (!own && entry.endsWith(".jar") && !entry.contains("/info/picocli/") && !entry.contains("jackson-dataformat-yaml")) {
        jars.add(entry);
      }
    }
    return jars;
  }

  private static void writeScript(Path path, String text) throws IOException {
    Files.writeString(path, text, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  private Map<String, String> daemonEnvironment() {
    Map<String, String> environment = environment();
    environment.put("SPARK_DAEMON_MEMORY", "256m");
    // The REST gateway listens on a fixed port (6066) by default; sparkprune-submit uses the RPC port.
    environment.put("SPARK_MASTER_OPTS", "-Dspark.master.rest.enabled=false");
    return environment;
  }

  private ClusterProcesses.Started startHdfs() throws IOException {
    Path hdfsDir = Files.createDirectories(dir.resolve("hdfs"));
    String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx384m",
        "-cp", classpath, MiniHdfsMain.class.getName(), hdfsDir.toString());
    return processes.start("hdfs", command, Map.of(), hdfsDir, dir.resolve("hdfs.log"));
  }

  private void startMaster() throws IOException, InterruptedException {
    List<String> command = List.of(sparkHome.resolve("bin/spark-class").toString(), "org.apache.spark.deploy.master.Master",
        "--host", "127.0.0.1", "--port", "0", "--webui-port", "0");
    ClusterProcesses.Started process = processes.start("master", command, daemonEnvironment(), dir, dir.resolve("master.log"));
    master = awaitLog(process, Pattern.compile("Starting Spark master at (spark://\\S+)"));
    String port = awaitLog(process, Pattern.compile("Bound MasterWebUI to \\S+, and started at http://[^:]+:(\\d+)"));
    masterUi = "http://127.0.0.1:" + port;
    awaitLog(process, Pattern.compile("(New state: ALIVE)"));
  }

  private void startWorker(int number) throws IOException {
    Path work = Files.createDirectories(dir.resolve("work-" + number));
    List<String> command = List.of(sparkHome.resolve("bin/spark-class").toString(), "org.apache.spark.deploy.worker.Worker",
        "--host", "127.0.0.1", "--port", "0", "--webui-port", "0", "--cores", String.valueOf(CORES_PER_WORKER), "--memory", "2g",
        "--work-dir", work.toString(), master);
    workers.add(processes.start("worker-" + number, command, daemonEnvironment(), dir, dir.resolve("worker-" + number + ".log")));
  }

  private void awaitWorkers() throws IOException, InterruptedException {
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      int alive = 0;
      for (JsonNode worker : masterState().path("workers")) {
        alive += worker.path("state").asText().equals("ALIVE") ? 1 : 0;
      }
      if (alive == WORKERS) {
        return;
      }
      for (ClusterProcesses.Started worker : workers) {
        if (!worker.process().isAlive()) {
          throw new IllegalStateException(worker.name() + " exited: " + worker.output());
        }
      }
      Thread.sleep(500);
    }
    throw new IllegalStateException("The workers did not register with the master in " + START_TIMEOUT);
  }

  /** The first group of the pattern in the process's log, once it appears. */
  static String awaitLog(ClusterProcesses.Started process, Pattern pattern) throws InterruptedException {
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      Matcher matcher = pattern.matcher(process.output());
      if (matcher.find()) {
        return matcher.group(1);
      }
      if (!process.process().isAlive()) {
        throw new IllegalStateException(process.name() + " exited before '" + pattern + "': " + process.output());
      }
      Thread.sleep(200);
    }
    throw new IllegalStateException(process.name() + " did not log '" + pattern + "' in " + START_TIMEOUT + ": " + process.output());
  }

  private static String awaitFile(Path file, ClusterProcesses.Started process) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    while (!Files.exists(file)) {
      if (!process.process().isAlive() || System.nanoTime() > deadline) {
        throw new IllegalStateException(process.name() + " did not start: " + process.output());
      }
      Thread.sleep(200);
    }
    return Files.readString(file).trim();
  }

  /** Waits until a condition on the master's state holds. */
  public JsonNode awaitMaster(Predicate<JsonNode> condition, Duration timeout) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      JsonNode state = masterState();
      if (condition.test(state) || System.nanoTime() > deadline) {
        return state;
      }
      Thread.sleep(200);
    }
  }

  @Override
  public void close() {
    processes.stopAll();
  }

  /**
   * Hands test classes the one cluster of this test run: {@code @BeforeAll static void
   * start(StandaloneCluster cluster)} in a class that declares {@code @ExtendWith(Resolver.class)}.
   * It starts at the first request and stops when the whole run ends.
   */
  public static final class Resolver implements ParameterResolver {
    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(StandaloneCluster.class);

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
      return parameter.getParameter().getType() == StandaloneCluster.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
      return context.getRoot().getStore(NAMESPACE).getOrComputeIfAbsent("cluster", key -> {
        try {
          // Under target/: the processes' logs stay there for a look after a failure.
          return new Holder(start(Files.createTempDirectory(Files.createDirectories(Path.of("target").toAbsolutePath()), "standalone-cluster-")));
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException(e);
        }
      }, Holder.class).cluster;
    }

    /** Stops the cluster when JUnit closes the root store, after the last test. */
    private record Holder(StandaloneCluster cluster) implements ExtensionContext.Store.CloseableResource {
      @Override
      public void close() {
        cluster.close();
      }
    }
  }
}
