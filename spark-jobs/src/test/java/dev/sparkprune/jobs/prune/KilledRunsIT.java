package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.spark.FaultInjection;
import dev.sparkprune.jobs.spark.FaultProbe;
import dev.sparkprune.jobs.output.Publisher;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.FolderSnapshot;
import dev.sparkprune.tensorio.SharedData;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A prune run whose process dies (halted, as kill -9 would) in the middle of writing the archive,
 * or between the two renames of the publish, never leaves a partial output, and the earlier
 * output survives: intact in place, or restored by the next run.
 */
class KilledRunsIT {
  /** The tests' fault probe, named to every child JVM. */
  private static final String PROBE = FaultProbe.CLASS_KEY + "=" + FaultInjection.class.getName();

  @TempDir Path dir;

  /** Exit code and output of {@code sparkprune prune} in a JVM of its own, local[2]. */
  private record Run(int code, String output) {}

  private Run prune(Path out, String sparsity, String... settings) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String argument : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (argument.startsWith("--add-") || argument.startsWith("-XX:+IgnoreUnrecognized") || argument.startsWith("--enable-native")) {
        command.add(argument);
      }
    }
    command.add("-Xmx1g");
    command.add("-Dspark.ui.enabled=false");
    command.add("-Dspark.driver.host=127.0.0.1");
    command.add("-Dspark.driver.bindAddress=127.0.0.1");
    for (String setting : settings) {
      command.add("-D" + setting);
    }
    command.addAll(List.of("-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
        "dev.sparkprune.jobs.cli.Main", "prune", "--model", SharedData.stories260K().toString(), "--out", out.toString(),
        "--method", "magnitude", "--sparsity", sparsity, "--master", "local[2]"));
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(120, TimeUnit.SECONDS)).isTrue();
    return new Run(process.exitValue(), output);
  }

  private List<String> siblings() throws IOException {
    try (Stream<Path> paths = Files.list(dir)) {
      return paths.map(path -> path.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void aRunKilledWhileWritingTheArchiveLeavesTheEarlierOutputIntact() throws IOException, InterruptedException {
    Path out = dir.resolve("pruned");
    Run earlier = prune(out, "0.5");
    assertThat(earlier.code()).as(earlier.output()).isZero();
    Map<String, byte[]> before = FolderSnapshot.of(out);

    Run killed = prune(out, "0.7", PROBE, FaultInjection.HALT_JVM_AT + "=write");
    assertThat(killed.code()).as(killed.output()).isEqualTo(137);
    Map<String, byte[]> after = FolderSnapshot.of(out);
    assertThat(after.keySet()).isEqualTo(before.keySet());
    before.forEach((name, bytes) -> assertThat(after.get(name)).as(name).isEqualTo(bytes));
    // The dead run's staging folder is all it leaves, beside the output and never inside it.
    assertThat(siblings()).hasSize(2).contains("pruned").anyMatch(name -> name.startsWith("pruned.staging-"));

    Run next = prune(out, "0.7");
    assertThat(next.code()).as(next.output()).isZero();
    assertThat(Files.readString(out.resolve("report.json"))).contains("\"sparsity\" : 0.7");
  }

  @Test
  void aRunKilledBetweenThePublishRenamesIsRestoredByTheNextRun() throws IOException, InterruptedException {
    Path out = dir.resolve("pruned");
    assertThat(prune(out, "0.5").code()).isZero();
    Map<String, byte[]> before = FolderSnapshot.of(out);

    Run killed = prune(out, "0.7", PROBE, FaultInjection.HALT_JVM_AT + "=publish");
    assertThat(killed.code()).as(killed.output()).isEqualTo(137);
    // Mid-publish: the earlier output is whole under its set-aside name and the lock is held.
    assertThat(out).doesNotExist();
    List<String> left = siblings();
    assertThat(left).contains("pruned.publish-lock").anyMatch(name -> name.startsWith("pruned.replaced-"));
    Path setAside = dir.resolve(left.stream().filter(name -> name.startsWith("pruned.replaced-")).findFirst().orElseThrow());
    assertThat(FolderSnapshot.of(setAside).keySet()).isEqualTo(before.keySet());

    // The next run treats the dead run's lock as stale, restores the earlier output, then replaces it.
    Run next = prune(out, "0.7", "spark.hadoop." + Publisher.STALE_LOCK_SECONDS + "=0", PROBE, FaultInjection.HALT_JVM_AT + "=write");
    assertThat(next.code()).isEqualTo(137);
    assertThat(out).exists();
    Map<String, byte[]> restored = FolderSnapshot.of(out);
    assertThat(restored.keySet()).isEqualTo(before.keySet());
    before.forEach((name, bytes) -> assertThat(restored.get(name)).as(name).isEqualTo(bytes));
    assertThat(siblings()).doesNotContain("pruned.publish-lock").noneMatch(name -> name.startsWith("pruned.replaced-"));
  }
}
