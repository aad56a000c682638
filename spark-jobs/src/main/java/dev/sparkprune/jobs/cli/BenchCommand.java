package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.bench.PruneBenchmark;
import dev.sparkprune.jobs.bench.ReferenceBenchmark;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.bench.ForwardBenchmark;
import dev.sparkprune.scoring.bench.KernelBenchmarks;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.bench.ReadBenchmark;
import dev.sparkprune.tensorio.bench.TokenizeBenchmark;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;

/**
 * {@code sparkprune bench <name>}: benchmark entry points, so figures come from the same jar that
 * runs in production. Speed is measured here, never in unit tests.
 */
final class BenchCommand {
  private static final String BENCHMARKS = "read, wanda, sparsegpt, admm, dsnot, hessian, sgemm, forward, prune, reference, tokenize";

  private BenchCommand() {}

  static int run(List<String> args, PrintStream out) throws IOException {
    CommandLine line =
        CommandLine.parse("bench", args, Set.of("size-mb", "passes", "dir", "rounds", "threads", "blocks", "nsamples", "seqlen", "tokenizer", "text", "chars", "shape", "methods", "python"), Set.of("java-blas", "global"));
    String name = line.requirePositional("benchmark name (" + BENCHMARKS + ")");
    int rounds = line.positiveInt("rounds", 5);
    int threads = line.positiveInt("threads", RowParallel.defaultThreads());
    LinearAlgebra linalg = line.flag("java-blas") ? NetlibLinearAlgebra.javaOnly() : NetlibLinearAlgebra.defaultInstance();
    switch (name) {
      case "read":
        return read(line, out);
      case "tokenize": {
        // --text: comma-separated files; the first --chars characters (default 2 MiB) are used.
        List<Path> files = java.util.Arrays.stream(line.require("text").split(",")).map(Path::of).toList();
        TokenizeBenchmark.run(Path.of(line.require("tokenizer")), TokenizeBenchmark.text(files, line.positiveInt("chars", 2 << 20)), rounds, out);
        return Main.EXIT_OK;
      }
      case "wanda":
        KernelBenchmarks.wanda(4096, 11008, rounds, threads, out);
        return Main.EXIT_OK;
      case "sparsegpt":
        KernelBenchmarks.sparseGpt(4096, 4096, rounds, threads, linalg, out);
        return Main.EXIT_OK;
      case "admm":
        KernelBenchmarks.admm(4096, 4096, rounds, threads, linalg, out);
        return Main.EXIT_OK;
      case "dsnot":
        KernelBenchmarks.dsnot(4096, 4096, rounds, threads, linalg, out);
        return Main.EXIT_OK;
      case "hessian":
        KernelBenchmarks.hessian(32768, 4096, rounds, linalg, out);
        return Main.EXIT_OK;
      case "sgemm":
        KernelBenchmarks.sgemmGflops(4096, rounds, linalg, out);
        return Main.EXIT_OK;
      case "prune": {
        Path directory = Files.createTempDirectory(line.value("dir").map(Path::of).orElse(Path.of(System.getProperty("java.io.tmpdir"))), "sparkprune-bench-");
        try {
          PruneBenchmark.run(directory, line.positiveInt("blocks", 18), line.positiveInt("nsamples", 8), line.positiveInt("seqlen", 512),
              line.flag("global"), out);
        } finally {
          deleteRecursively(directory);
        }
        return Main.EXIT_OK;
      }
      case "reference": {
        // Whole prune job vs bench/reference_prune.py (issue #13); --shape small|1b, --methods wanda,sparsegpt.
        String shape = line.value("shape").orElse("small");
        ValidationException.check(shape.equals("small") || shape.equals("1b"), "Invalid --shape %s: expected small or 1b", shape);
        Path directory = Files.createTempDirectory(line.value("dir").map(Path::of).orElse(Path.of(System.getProperty("java.io.tmpdir"))), "sparkprune-bench-");
        try {
          ReferenceBenchmark.run(directory, shape.equals("1b") ? ReferenceBenchmark.Shape.ONE_B : ReferenceBenchmark.Shape.SMALL,
              ReferenceBenchmark.methods(line.value("methods").orElse("wanda,sparsegpt")), line.positiveInt("rounds", 1),
              new ReferenceBenchmark.Reference(Path.of(line.value("python").orElse(".bench-reference/bin/python")), Path.of("bench/reference_prune.py")),
              linalg, out);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("Interrupted while running the reference", e);
        } finally {
          deleteRecursively(directory);
        }
        return Main.EXIT_OK;
      }
      case "forward": {
        double sgemm = KernelBenchmarks.sgemmGflops(4096, 3, linalg, out);
        Path directory = Files.createTempDirectory(line.value("dir").map(Path::of).orElse(Path.of(System.getProperty("java.io.tmpdir"))), "sparkprune-bench-");
        try {
          ForwardBenchmark.run(directory, rounds, linalg, sgemm, out);
        } finally {
          deleteRecursively(directory);
        }
        return Main.EXIT_OK;
      }
      default:
        throw new ValidationException("Unknown benchmark '" + name + "' (benchmarks: " + BENCHMARKS + ")");
    }
  }

  private static int read(CommandLine line, PrintStream out) throws IOException {
    int megabytes = line.positiveInt("size-mb", 512);
    int passes = line.positiveInt("passes", 5);
    Path directory = line.value("dir").map(Path::of).orElse(Path.of(System.getProperty("java.io.tmpdir")));
    Path shard = Files.createTempFile(directory, "sparkprune-bench-", ".safetensors");
    Files.delete(shard);
    try {
      LocalFileIO local = new LocalFileIO();
      ReadBenchmark.writeShard(local, shard.toString(), megabytes);
      out.printf("read: %s (%d MB BF16, 2048 x 2048 tensors), one thread, page cache%n", shard, Files.size(shard) >> 20);
      for (FileIO io : List.of(new HadoopFileIO(new Configuration()), local)) {
        out.println(io.getClass().getSimpleName() + ":");
        ReadBenchmark.run(io, shard.toUri().toString(), passes, out);
      }
    } finally {
      Files.deleteIfExists(shard);
    }
    return Main.EXIT_OK;
  }


  private static void deleteRecursively(Path directory) throws IOException {
    try (var paths = Files.walk(directory)) {
      for (Path path : (Iterable<Path>) paths.sorted(java.util.Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(path);
      }
    }
  }
}
