package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.bench.ExpertParallelBenchmark;
import dev.sparkprune.jobs.bench.PruneBenchmark;
import dev.sparkprune.jobs.bench.ReferenceBenchmark;
import dev.sparkprune.scoring.RowParallel;
import dev.sparkprune.scoring.bench.ForwardBenchmark;
import dev.sparkprune.scoring.bench.GradientBenchmark;
import dev.sparkprune.scoring.bench.KernelBenchmarks;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
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
import java.util.Locale;
import org.apache.hadoop.conf.Configuration;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * {@code sparkprune bench <kind>}: benchmark entry points, so figures come from the same jar that
 * runs in production. Speed is measured here, never in unit tests. Each kind is a subcommand
 * with its own options ({@link #kinds()}); a new benchmark is one more {@link Kind} there.
 */
final class BenchCommand implements Subcommand {
  private static final int ROUNDS_DEFAULT = 5;

  /** A benchmark: its name, help, options and body. */
  record Kind(String name, String description, List<OptionSpec> options, Body body) {}

  /** What a benchmark runs on its parsed options. */
  interface Body {
    void run(Arguments arguments, PrintStream out) throws IOException;
  }

  /** Every benchmark; new specs each call, since picocli's option specs belong to one command. */
  private static List<Kind> kinds() {
    return List.of(
      new Kind("read", "Reading and decoding a generated BF16 shard.",
          List.of(Specs.option("size-mb", "N", "Shard size in MB. Default: 512."), Specs.option("passes", "N", "Passes. Default: 5."), dir()),
          BenchCommand::read),
      new Kind("wanda", "The Wanda kernel at 4096 x 11008.", List.of(rounds(), threads()),
          (a, out) -> KernelBenchmarks.wanda(4096, 11008, rounds(a), threads(a), out)),
      new Kind("sparsegpt", "SparseGPT at 4096 x 4096.", List.of(rounds(), threads(), javaBlas()),
          (a, out) -> KernelBenchmarks.sparseGpt(4096, 4096, rounds(a), threads(a), linalg(a), out)),
      new Kind("admm", "The ADMM update at 4096 x 4096.", List.of(rounds(), threads(), javaBlas()),
          (a, out) -> KernelBenchmarks.admm(4096, 4096, rounds(a), threads(a), linalg(a), out)),
      new Kind("dsnot", "DSnoT at 4096 x 4096.", List.of(rounds(), threads(), javaBlas()),
          (a, out) -> KernelBenchmarks.dsnot(4096, 4096, rounds(a), threads(a), linalg(a), out)),
      new Kind("hessian", "X^T X of 32768 x 4096 activations.", List.of(rounds(), javaBlas()),
          (a, out) -> KernelBenchmarks.hessian(32768, 4096, rounds(a), linalg(a), out)),
      new Kind("sgemm", "SGEMM GFLOP/s at 4096.", List.of(rounds(), javaBlas()),
          (a, out) -> KernelBenchmarks.sgemmGflops(4096, rounds(a), linalg(a), out)),
      new Kind("forward", "Forward passes of a generated model (or --model's) vs its GEMM compute.", List.of(rounds(), javaBlas(), dir(),
          Specs.option("model", "URI", "Measure this archive (e.g. a shrunk one) instead, batch 8 x --seqlen."),
          Specs.option("seqlen", "N", "Tokens per sequence with --model. Default: 512.")),
          BenchCommand::forward),
      new Kind("gradients", "The gradient pass (backward, per-sample statistics) vs a forward calibration pass on --model.",
          List.of(Specs.required("model", "URI", "The model archive."),
              Specs.option("nsamples", "N", "Random sequences, each run alone. Default: 32."),
              Specs.option("seqlen", "N", "Tokens per sequence. Default: 256."), rounds(), javaBlas()),
          BenchCommand::gradients),
      new Kind("prune", "The whole prune job on a generated model.",
          List.of(Specs.option("blocks", "N", "Blocks of the generated model. Default: 18."),
              Specs.option("nsamples", "N", "Calibration samples. Default: 8."), Specs.option("seqlen", "N", "Tokens per sample. Default: 512."),
              Specs.flag("global", "With --allocation global."), dir()),
          BenchCommand::prune),
      new Kind("experts", "Expert-parallel vs whole-block prune of a generated DeepSeek-V3-shaped archive, one JVM per run.",
          List.of(Specs.option("layers", "N", "Blocks (the first dense). Default: 4."),
              Specs.option("experts", "N", "Routed experts per block (a multiple of 8). Default: 256."),
              Specs.option("hidden", "N", "Hidden size. Default: 512."), Specs.option("intermediate", "N", "Expert width. Default: 512."),
              Specs.option("nsamples", "N", "Calibration samples. Default: 8."), Specs.option("seqlen", "N", "Tokens per sample. Default: 64."),
              Specs.option("heap-mb", "MB", "Heap of the two compared runs. Default: 6144."),
              Specs.option("small-heap-mb", "MB", "Heap of the third and fourth runs. Default: 640."),
              Specs.option("expert-task-mb", "MB", "Budget of the expert-parallel runs. Default: 64."), dir()),
          BenchCommand::experts),
      new Kind("reference", "The whole prune job vs a single-process PyTorch script (bench/reference_prune.py) on one archive.",
          List.of(Specs.option("shape", "S", "small (4.6M parameters, 128 x 128 ids) or 1b (16 x 2048 ids). Default: small."),
              Specs.option("methods", "M", "Comma-separated: wanda, sparsegpt. Default: wanda,sparsegpt."),
              Specs.option("rounds", "N", "Rounds of each side. Default: 1."),
              Specs.option("python", "PATH", "Python with torch. Default: .bench-reference/bin/python."), javaBlas(), dir()),
          BenchCommand::reference),
      new Kind("tokenize", "Tokens per second of a tokenizer.json on a text.",
          List.of(Specs.required("tokenizer", "DIR", "Folder with tokenizer.json."),
              Specs.required("text", "FILES", "Comma-separated text files."),
              Specs.option("chars", "N", "Characters used. Default: 2 MiB."), rounds()),
          BenchCommand::tokenize));
  }

  private final CommandSpec spec;

  BenchCommand() {
    spec = Specs.command(this, "bench", "Benchmarks: the kernels at reference sizes, reading, tokenizing, the prune job.");
    for (Kind kind : kinds()) {
      CommandSpec kindSpec = Specs.command(new Runner(kind), kind.name(), kind.description());
      kind.options().forEach(kindSpec::addOption);
      spec.addSubcommand(kind.name(), new CommandLine(kindSpec));
    }
  }

  @Override
  public CommandSpec spec() {
    return spec;
  }

  /** {@code bench} without a kind. */
  @Override
  public int run(Arguments arguments, PrintStream out) {
    throw new ValidationException("Missing benchmark for 'bench' (" + String.join(", ", spec.subcommands().keySet()) + ")");
  }

  /** One kind as a command. */
  private record Runner(Kind kind) implements Subcommand {
    @Override
    public CommandSpec spec() {
      throw new UnsupportedOperationException("a kind's spec belongs to bench");
    }

    @Override
    public int run(Arguments arguments, PrintStream out) throws IOException {
      kind.body().run(arguments, out);
      return Main.EXIT_OK;
    }
  }

  private static OptionSpec rounds() {
    return Specs.option("rounds", "N", "Timed rounds. Default: " + ROUNDS_DEFAULT + ".");
  }

  private static OptionSpec threads() {
    return Specs.option("threads", "N", "Threads. Default: the available cores.");
  }

  private static OptionSpec javaBlas() {
    return Specs.flag("java-blas", "Pure-Java BLAS instead of the native one.");
  }

  private static OptionSpec dir() {
    return Specs.option("dir", "DIR", "Folder for the generated files. Default: java.io.tmpdir.");
  }

  private static int rounds(Arguments arguments) {
    return arguments.positiveInt("rounds", ROUNDS_DEFAULT);
  }

  private static int threads(Arguments arguments) {
    return arguments.positiveInt("threads", RowParallel.defaultThreads());
  }

  private static LinearAlgebra linalg(Arguments arguments) {
    return arguments.flag("java-blas") ? NetlibLinearAlgebra.javaOnly() : NetlibLinearAlgebra.defaultInstance();
  }

  private static Path directory(Arguments arguments) {
    return arguments.value("dir").map(Path::of).orElse(Path.of(System.getProperty("java.io.tmpdir")));
  }

  private static void tokenize(Arguments line, PrintStream out) throws IOException {
    List<Path> files = java.util.Arrays.stream(line.require("text").split(",")).map(Path::of).toList();
    TokenizeBenchmark.run(Path.of(line.require("tokenizer")), TokenizeBenchmark.text(files, line.positiveInt("chars", 2 << 20)), rounds(line), out);
  }

  private static void prune(Arguments line, PrintStream out) throws IOException {
    Path directory = Files.createTempDirectory(directory(line), "sparkprune-bench-");
    try {
      PruneBenchmark.run(directory, line.positiveInt("blocks", 18), line.positiveInt("nsamples", 8), line.positiveInt("seqlen", 512),
          line.flag("global"), out);
    } finally {
      deleteRecursively(directory);
    }
  }

  /** Issue #24's comparison: the sharded and whole-block paths on one generated archive. */
  private static void experts(Arguments line, PrintStream out) throws IOException {
    Path directory = Files.createTempDirectory(directory(line), "sparkprune-bench-");
    try {
      ExpertParallelBenchmark.run(directory, new ExpertParallelBenchmark.Settings(line.positiveInt("layers", 4), line.positiveInt("experts", 256),
          line.positiveInt("hidden", 512), line.positiveInt("intermediate", 512), line.positiveInt("nsamples", 8), line.positiveInt("seqlen", 64),
          line.positiveInt("heap-mb", 6144), line.positiveInt("small-heap-mb", 640), line.positiveInt("expert-task-mb", 64)), out);
    } finally {
      deleteRecursively(directory);
    }
  }

  /** Issue #13's comparison; run from the checkout root, where bench/reference_prune.py is. */
  private static void reference(Arguments line, PrintStream out) throws IOException {
    String shape = line.value("shape").orElse("small");
    ValidationException.check(shape.equals("small") || shape.equals("1b"), "Invalid --shape %s: expected small or 1b", shape);
    Path directory = Files.createTempDirectory(directory(line), "sparkprune-bench-");
    try {
      ReferenceBenchmark.run(directory, shape.equals("1b") ? ReferenceBenchmark.Shape.ONE_B : ReferenceBenchmark.Shape.SMALL,
          ReferenceBenchmark.methods(line.value("methods").orElse("wanda,sparsegpt")), line.positiveInt("rounds", 1),
          new ReferenceBenchmark.Reference(Path.of(line.value("python").orElse(".bench-reference/bin/python")), Path.of("bench/reference_prune.py")),
          linalg(line), out);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("Interrupted while running the reference", e);
    } finally {
      deleteRecursively(directory);
    }
  }

  private static void forward(Arguments line, PrintStream out) throws IOException {
    LinearAlgebra linalg = linalg(line);
    double sgemm = KernelBenchmarks.sgemmGflops(4096, 3, linalg, out);
    if (line.value("model").isPresent()) {
      ModelArchive archive = ModelArchive.open(new HadoopFileIO(new Configuration()), line.value("model").get());
      out.printf(Locale.ROOT, "forward: %s, %,d parameters; batch 8 x seqlen %d, %s%n", archive.location(), archive.totalParameters(),
          line.positiveInt("seqlen", 512), linalg.description());
      ForwardBenchmark.run(archive, 8, line.positiveInt("seqlen", 512), rounds(line), linalg, sgemm, out);
      return;
    }
    Path directory = Files.createTempDirectory(directory(line), "sparkprune-bench-");
    try {
      ForwardBenchmark.run(directory, rounds(line), linalg, sgemm, out);
    } finally {
      deleteRecursively(directory);
    }
  }

  private static void gradients(Arguments line, PrintStream out) throws IOException {
    ModelArchive archive = ModelArchive.open(new HadoopFileIO(new Configuration()), line.require("model"));
    GradientBenchmark.run(archive, line.positiveInt("nsamples", 32), line.positiveInt("seqlen", 256), rounds(line), linalg(line), out);
  }

  private static void read(Arguments line, PrintStream out) throws IOException {
    int megabytes = line.positiveInt("size-mb", 512);
    int passes = line.positiveInt("passes", 5);
    Path shard = Files.createTempFile(directory(line), "sparkprune-bench-", ".safetensors");
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
  }

  private static void deleteRecursively(Path directory) throws IOException {
    try (var paths = Files.walk(directory)) {
      for (Path path : (Iterable<Path>) paths.sorted(java.util.Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(path);
      }
    }
  }
}
