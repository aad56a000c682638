package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a user sees on the console: the CLI runs in a JVM of its own with the shipped
 * {@code conf/log4j2.properties}, as {@code bin/sparkprune} starts it, so Spark's own log lines
 * land on the captured stderr too (an in-process run only sees the CLI's stream).
 */
class ConsoleErrorsIT {
  private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

  @TempDir Path dir;

  /** Exit code, stdout and stderr of one child JVM. */
  private record Run(int code, String out, String err) {}

  private static Run sparkprune(Path work, String... args) throws IOException, InterruptedException {
    return sparkprune(work, List.of(), args);
  }

  private static Run sparkprune(Path work, List<String> properties, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    // The surefire JVM's module options are the ones Spark needs on Java 17+.
    for (String option : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (option.startsWith("--add-opens") || option.startsWith("--add-exports") || option.startsWith("--enable-native-access") || option.startsWith("-XX:+Ignore")
          || option.startsWith("-Djdk.reflect") || option.startsWith("-Dio.netty")) {
        command.add(option);
      }
    }
    command.add("-Xmx2g");
    command.addAll(properties);
    command.add("-Dlog4j2.configurationFile=" + ROOT.resolve("conf/log4j2.properties"));
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(Main.class.getName());
    command.addAll(List.of(args));
    Path out = work.resolve("stdout.txt");
    Path err = work.resolve("stderr.txt");
    Process process = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    assertThat(process.waitFor(240, TimeUnit.SECONDS)).as("the CLI finished within 240 s").isTrue();
    return new Run(process.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
  }

  /** A copy of stories260K with one NaN in a weight: found only by the scoring task that reads it. */
  static Path poisonedStories260K(Path dir) throws IOException {
    Path poisoned = dir.resolve("poisoned");
    Files.createDirectories(poisoned);
    try (Stream<Path> files = Files.list(SharedData.stories260K())) {
      for (Path file : (Iterable<Path>) files::iterator) {
        Files.copy(file, poisoned.resolve(file.getFileName()));
      }
    }
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), poisoned.toString());
    long offset = archive.tensor("model.layers.2.mlp.up_proj.weight").fileBegin() + 4L * (3 * 64 + 5);
    try (FileChannel channel = FileChannel.open(poisoned.resolve("model.safetensors"), StandardOpenOption.WRITE)) {
      channel.write(ByteBuffer.wrap(new byte[] {0, 0, (byte) 0xC0, 0x7F}), offset);
    }
    return poisoned;
  }

  @Test
  void aValidationFailureInsideASparkTaskIsOneLineUnlessVerbose() throws IOException, InterruptedException {
    Path model = poisonedStories260K(dir);
    Path quietWork = Files.createDirectories(dir.resolve("quiet"));
    Run quiet = sparkprune(quietWork, "prune", "--model", model.toString(), "--out", dir.resolve("out").toString(), "--method", "magnitude");
    assertThat(quiet.code()).as(quiet.err()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(quiet.err())
        .isEqualTo("sparkprune: error: Cannot prune layer model.layers.2.mlp.up_proj.weight: weight [3, 5] is NaN" + System.lineSeparator());
    assertThat(dir.resolve("out")).doesNotExist();

    Path verboseWork = Files.createDirectories(dir.resolve("verbose"));
    Run verbose = sparkprune(verboseWork, "prune", "--verbose", "--model", model.toString(), "--out", dir.resolve("out").toString(),
        "--method", "magnitude");
    assertThat(verbose.code()).isEqualTo(Main.EXIT_BAD_INPUT);
    // Spark's own account of the failed task and the CLI's stack trace are both there.
    assertThat(verbose.err())
        .contains("sparkprune: error: Cannot prune layer model.layers.2.mlp.up_proj.weight: weight [3, 5] is NaN")
        .contains("TaskSetManager: Lost task")
        .contains("\tat dev.sparkprune.");
    assertThat(verbose.err().lines().count()).isGreaterThan(20);
    try (Stream<Path> siblings = Files.list(dir)) {
      assertThat(siblings.map(path -> path.getFileName().toString())).noneMatch(name -> name.startsWith("out"));
    }
  }

  @Test
  void aFullDiskInsideASparkTaskIsOneLineAndLeavesNothing() throws IOException, InterruptedException {
    Path work = Files.createDirectories(dir.resolve("full"));
    String out = "fulldisk://" + dir.resolve("pruned");
    Run full = sparkprune(work, List.of("-Dspark.hadoop.fs.fulldisk.impl=" + FullDiskFileSystem.class.getName()),
        "prune", "--model", SharedData.stories260K().toString(), "--out", out, "--method", "magnitude");
    assertThat(full.code()).as(full.err()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(full.err()).isEqualTo("sparkprune: error: " + Main.DISK_FULL + System.lineSeparator());
    try (Stream<Path> siblings = Files.list(dir)) {
      assertThat(siblings.map(path -> path.getFileName().toString())).noneMatch(name -> name.startsWith("pruned"));
    }
  }
}
