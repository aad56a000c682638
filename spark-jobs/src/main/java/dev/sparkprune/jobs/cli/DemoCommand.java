package dev.sparkprune.jobs.cli;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;

/**
 * {@code sparkprune demo}: works on a fresh machine with no data. Writes a small random
 * Llama-style archive (2 shards, BF16) and inspects it.
 */
final class DemoCommand {
  private DemoCommand() {}

  static int run(List<String> args, PrintStream out) throws IOException {
    CommandLine line = CommandLine.parse("demo", args, Set.of("out"), Set.of());
    line.requireNoPositionals();
    String directory =
        line.value("out").orElseGet(() -> uncheckedTempDir().resolve("demo-model").toString());
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ValidationException.check(
        !io.exists(io.resolve(directory, ModelArchive.CONFIG)), "Cannot write demo archive: %s already holds a model", directory);
    SyntheticArchive.builder(SyntheticArchive.llamaConfig(256, 4, 8, 4, 688, 1024))
        .dtype(dev.sparkprune.tensorio.DType.BF16)
        .shards(2)
        .seed(42)
        .build()
        .write(io, directory);
    out.println("Wrote a random Llama-style demo archive to " + directory);
    out.println();
    ModelArchive archive = ModelArchive.open(io, directory);
    InspectCommand.printTable(archive, Architectures.layout(archive), out);
    return Main.EXIT_OK;
  }

  private static Path uncheckedTempDir() {
    try {
      return Files.createTempDirectory("sparkprune-demo-");
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("Cannot create a temporary directory", e);
    }
  }
}
