package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.prune.output.PruneReport;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The prune job on S3 through s3a, against an s3proxy server started out of process on
 * 127.0.0.1 (filesystem-backed). Runs with {@code mvn -Ps3 verify}, which adds hadoop-aws (and
 * its AWS SDK bundle) and fetches the s3proxy jar; skipped otherwise.
 */
class PruneOnS3IT extends SparkTestBase {
  private static final String BUCKET = "lake";
  private static Process s3proxy;
  private static String endpoint;

  @TempDir static Path dir;

  private static boolean s3aAvailable() {
    try {
      Class.forName("org.apache.hadoop.fs.s3a.S3AFileSystem");
      return true;
    } catch (ClassNotFoundException e) {
      return false;
    }
  }

  private static final String JAR = System.getProperty("sparkprune.s3proxy.jar", "");

  /** Both only with -Ps3: hadoop-aws pulls a very large AWS SDK bundle. */
  private static boolean enabled() {
    return s3aAvailable() && !JAR.isEmpty() && Files.exists(Path.of(JAR));
  }

  @BeforeAll
  static void startS3Proxy() throws Exception {
    if (!enabled()) {
      return;
    }
    String jar = JAR;
    int port;
    try (ServerSocket socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    endpoint = "http://127.0.0.1:" + port;
    Path storage = Files.createDirectories(dir.resolve("s3").resolve(BUCKET)).getParent();
    Path properties = dir.resolve("s3proxy.properties");
    Files.writeString(properties, String.join("\n",
        "s3proxy.endpoint=" + endpoint,
        "s3proxy.authorization=aws-v2-or-v4",
        "s3proxy.identity=sparkprune",
        "s3proxy.credential=sparkprune-secret",
        "jclouds.provider=filesystem",
        "jclouds.filesystem.basedir=" + storage,
        ""));
    s3proxy = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar", jar, "--properties",
        properties.toString()).redirectErrorStream(true).redirectOutput(dir.resolve("s3proxy.log").toFile()).start();
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (true) {
      try (Socket socket = new Socket("127.0.0.1", port)) {
        break;
      } catch (IOException e) {
        if (!s3proxy.isAlive() || System.nanoTime() > deadline) {
          throw new IllegalStateException("s3proxy did not start: " + Files.readString(dir.resolve("s3proxy.log")));
        }
        Thread.sleep(200);
      }
    }
    Map<String, String> s3a = Map.of(
        "fs.s3a.endpoint", endpoint,
        "fs.s3a.endpoint.region", "us-east-1",
        "fs.s3a.path.style.access", "true",
        "fs.s3a.connection.ssl.enabled", "false",
        "fs.s3a.access.key", "sparkprune",
        "fs.s3a.secret.key", "sparkprune-secret",
        "fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.change.detection.mode", "none");
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    s3a.forEach(conf::set);
    FileSystem fs = FileSystem.get(java.net.URI.create("s3a://" + BUCKET + "/"), conf);
    fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(SharedData.stories260K().toUri()), new org.apache.hadoop.fs.Path("s3a://" + BUCKET + "/models/stories260K"));
    fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(SharedData.path("data/tinystories/tinystories_val_sample.txt").toUri()),
        new org.apache.hadoop.fs.Path("s3a://" + BUCKET + "/text/tinystories.txt"));
  }

  @AfterAll
  static void stopS3Proxy() {
    if (s3proxy != null) {
      s3proxy.destroyForcibly();
    }
  }

  private static PruneReport run(String model, String text, String out) throws IOException {
    PruneOptions options = PruneOptions.builder().model(model).out(out).method(PruningMethod.WANDA).target(SparsityTarget.unstructured(0.5))
        .calibration(text).nsamples(4).seqlen(64).seed(3).build();
    return new PruneJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
  }

  @Test
  void s3InputAndOutputGiveTheSameBytesAsLocalFiles() throws IOException {
    assumeTrue(enabled(), "s3a and s3proxy are on the test classpath only with -Ps3 (mvn -Ps3 verify): skipping the S3 run");
    String out = "s3a://" + BUCKET + "/pruned/stories260K";
    run("s3a://" + BUCKET + "/models/stories260K", "s3a://" + BUCKET + "/text/tinystories.txt", out);
    // A rerun replaces the published output (on S3 the publish is a copy, not an atomic rename).
    run("s3a://" + BUCKET + "/models/stories260K", "s3a://" + BUCKET + "/text/tinystories.txt", out);
    Path local = dir.resolve("local-out");
    run(SharedData.stories260K().toString(), SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), local.toString());

    FileSystem fs = FileSystem.get(java.net.URI.create(out), spark.sparkContext().hadoopConfiguration());
    byte[] remote;
    try (InputStream in = fs.open(new org.apache.hadoop.fs.Path(out + "/model/model.safetensors"))) {
      remote = in.readAllBytes();
    }
    assertThat(remote).isEqualTo(Files.readAllBytes(local.resolve("model/model.safetensors")));
    assertThat(TestPruneJobMasks.read(spark, out)).isEqualTo(TestPruneJobMasks.read(spark, local));
    List<String> siblings = new java.util.ArrayList<>();
    for (var status : fs.listStatus(new org.apache.hadoop.fs.Path("s3a://" + BUCKET + "/pruned"))) {
      siblings.add(status.getPath().getName());
    }
    assertThat(siblings).containsExactly("stories260K");
  }
}
