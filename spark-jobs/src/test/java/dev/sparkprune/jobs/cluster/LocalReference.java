package dev.sparkprune.jobs.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.FolderSnapshot;
import dev.sparkprune.tensorio.SharedData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * What every real-cluster run must reproduce: the outputs of one local run of the documented
 * local launcher ({@code bin/sparkprune prune --master local[4]}, stories260K, Wanda, 4 samples of
 * 64 tokens), made once per test JVM. {@code local[4]} has the cluster's 4 executor cores, so the
 * scoring tasks, and with them the mask files, are cut the same way.
 */
final class LocalReference {
  static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  private static Map<String, String> outputs;

  private LocalReference() {}

  static Path text() {
    return SharedData.path("data/tinystories/tinystories_val_sample.txt");
  }

  /** The reference outputs, pruned locally at the first call. */
  static synchronized Map<String, String> outputs(StandaloneCluster cluster) throws IOException, InterruptedException {
    if (outputs == null) {
      Path dir = Files.createTempDirectory(Files.createDirectories(Path.of("target").toAbsolutePath()), "local-reference-");
      Path out = dir.resolve("pruned");
      List<String> command = List.of(ROOT.resolve("bin/sparkprune").toString(), "prune", "--master", "local[4]",
          "--model", SharedData.stories260K().toString(), "--out", out.toString(), "--method", "wanda",
          "--calib", text().toString(), "--nsamples", "4", "--seqlen", "64");
      ClusterProcesses.Started local = cluster.processes().start("local reference", command, Map.of(), dir, dir.resolve("console.log"));
      assertThat(local.process().waitFor(10, TimeUnit.MINUTES)).as(local.output()).isTrue();
      assertThat(local.process().exitValue()).as(local.output()).isZero();
      Map<String, String> files = outputs(out);
      assertThat(files).containsKey("model/model.safetensors").anySatisfy((name, bytes) -> assertThat(name).startsWith("masks/block=4/"));
      outputs = files;
    }
    return outputs;
  }

  /**
   * The job's own outputs, relative path to SHA-256 of the bytes: masks and pruned archive
   * (report.json holds timings and hosts).
   */
  static Map<String, String> outputs(Path out) throws IOException {
    Map<String, String> files = new TreeMap<>();
    for (Map.Entry<String, byte[]> file : FolderSnapshot.of(out).entrySet()) {
      String name = file.getKey();
      boolean hidden = Path.of(name).getFileName().toString().startsWith(".");
      if (!hidden && (name.startsWith("model/") || name.startsWith("masks/"))) {
        files.put(name, sha256(file.getValue()));
      }
    }
    return files;
  }

  private static String sha256(byte[] bytes) {
    try {
      return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
