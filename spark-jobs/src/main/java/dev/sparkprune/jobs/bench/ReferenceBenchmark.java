package dev.sparkprune.jobs.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.prune.PruneJob;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.output.PruneReport;
import dev.sparkprune.jobs.spark.SparkSessions;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.bench.KernelBenchmarks;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.apache.spark.sql.SparkSession;

/**
 * The whole prune job on {@code local[2]} against a single-process PyTorch script doing the same
 * algorithm (bench/reference_prune.py: locuslab/wanda's sequential prune_wanda and
 * prune_sparsegpt, one sample at a time) on the same machine, generated Llama archive and
 * calibration token ids (written here as pre-tokenized JSONL, so both read identical windows).
 * Prints per-block seconds of both next to one dense forward of that block's GEMMs at this
 * machine's sgemm rate, the wall times, their ratio and how many mask entries agree.
 */
public final class ReferenceBenchmark {
  private static final ObjectMapper JSON = new ObjectMapper();
  /** The byte-level tokenizer the generated archive ships has 256 bytes and one special id. */
  private static final int TOKENIZER_VOCAB = 257;

  private ReferenceBenchmark() {}

  /** The shapes of issue #13: a 4.5M-parameter Llama and the ~1B generated archive. */
  public enum Shape {
    SMALL(256, 6, 8, 4, 688, 512, DType.F32, 128, 128),
    ONE_B(2048, 18, 16, 8, 5632, 32000, DType.BF16, 16, 2048);

    final int hidden;
    final int blocks;
    final int heads;
    final int kvHeads;
    final int intermediate;
    final int vocab;
    final DType dtype;
    final int nsamples;
    final int seqlen;

    Shape(int hidden, int blocks, int heads, int kvHeads, int intermediate, int vocab, DType dtype, int nsamples, int seqlen) {
      this.hidden = hidden;
      this.blocks = blocks;
      this.heads = heads;
      this.kvHeads = kvHeads;
      this.intermediate = intermediate;
      this.vocab = vocab;
      this.dtype = dtype;
      this.nsamples = nsamples;
      this.seqlen = seqlen;
    }

    /**
     * Multiply-adds x 2 of one dense forward of a block over all calibration tokens: the seven
     * linears, plus QK^T and PV over the causal half of each sequence's [seqlen x seqlen].
     */
    double blockForwardFlops() {
      int headDim = hidden / heads;
      double tokens = (double) nsamples * seqlen;
      double linears = 2 * tokens * ((double) hidden * heads * headDim * 2 + 2.0 * hidden * kvHeads * headDim + 3.0 * hidden * intermediate);
      double attention = 2 * 2 * (double) nsamples * seqlen * (seqlen + 1) / 2 * heads * headDim;
      return linears + attention;
    }
  }

  /** Where the reference runs: the venv's python and the script (relative to the checkout by default). */
  public record Reference(Path python, Path script) {}

  public static void run(Path directory, Shape shape, List<PruningMethod> methods, int rounds, Reference reference, LinearAlgebra linalg,
      PrintStream out) throws IOException, InterruptedException {
    Path model = directory.resolve("model");
    SyntheticArchive.builder(SyntheticArchive.llamaConfig(shape.hidden, shape.blocks, shape.heads, shape.kvHeads, shape.intermediate, shape.vocab))
        .dtype(shape.dtype)
        .shards(shape == Shape.ONE_B ? 4 : 1)
        .seed(1)
        .build()
        .write(new LocalFileIO(), model.toString());
    SyntheticArchive.writeByteLevelTokenizer(new LocalFileIO(), model.toString());
    Path calibration = writeCalibration(directory.resolve("calibration.jsonl"), shape.nsamples, shape.seqlen);
    double sgemm = KernelBenchmarks.sgemmGflops(1024, 3, linalg, out);
    double forwardSeconds = shape.blockForwardFlops() / (sgemm * 1e9);
    boolean haveReference = Files.isExecutable(reference.python()) && Files.isRegularFile(reference.script());
    out.printf(Locale.ROOT, "reference: Llama hidden %d, %d blocks, %d/%d heads, intermediate %d, vocab %d, %s; %d x %d calibration tokens;"
            + " one dense forward of a block: %.2f GFLOP = %.3f s at sgemm %.0f GFLOP/s (OPENBLAS_NUM_THREADS=%s)%n",
        shape.hidden, shape.blocks, shape.heads, shape.kvHeads, shape.intermediate, shape.vocab, shape.dtype, shape.nsamples, shape.seqlen,
        shape.blockForwardFlops() / 1e9, forwardSeconds, sgemm, System.getenv().getOrDefault("OPENBLAS_NUM_THREADS", "unset"));
    if (!haveReference) {
      out.printf("reference: %s or %s is missing; run bin/setup-bench-reference for the PyTorch side. Timing sparkprune only.%n",
          reference.python(), reference.script());
    }
    SparkSession spark = SparkSessions.getOrCreate("local[2]");
    for (PruningMethod method : methods) {
      double[] ours = new double[rounds];
      double[] theirs = new double[rounds];
      double[] oursCpu = new double[rounds];
      double[] theirsCpu = new double[rounds];
      for (int round = 0; round < rounds; round++) {
        Path javaOut = directory.resolve("out-" + method.displayName());
        Run java = runJob(spark, shape, method, model, calibration, javaOut, directory.resolve("job.log"));
        ours[round] = java.wall;
        oursCpu[round] = java.cpu;
        Run python = haveReference
            ? runReference(reference, method, model, calibration, directory.resolve("reference-" + method.displayName()), javaOut.resolve("model"))
            : null;
        theirs[round] = python == null ? Double.NaN : python.wall;
        theirsCpu[round] = python == null ? Double.NaN : python.cpu;
        out.printf(Locale.ROOT, "%s round %d: sparkprune %.1f s (%.1f CPU s)%s%n", method.displayName(), round + 1, java.wall, java.cpu,
            python == null ? "" : String.format(Locale.ROOT, ", reference %.1f s (%.1f CPU s), ratio %.2f (CPU %.2f); %s", python.wall, python.cpu,
                java.wall / python.wall, java.cpu / python.cpu, python.note));
        for (int b = 0; b < shape.blocks; b++) {
          out.printf(Locale.ROOT, "  block %d: sparkprune %.2f s%s; one forward's GEMMs %.3f s%n", b, java.blocks[b],
              python == null ? "" : String.format(Locale.ROOT, ", reference %.2f s", python.blocks[b]), forwardSeconds);
        }
        // The job's own progress lines show where a block's time goes (stages, scoring, writes).
        for (String line : Files.readAllLines(directory.resolve("job.log"), StandardCharsets.UTF_8)) {
          out.println("  job " + line);
        }
      }
      out.printf(Locale.ROOT, "%s: sparkprune %s; reference %s; ratio sparkprune / reference %s (CPU time %s)%n", method.displayName(),
          summary(ours), summary(theirs), haveReference ? String.format(Locale.ROOT, "%.2f", median(ours) / median(theirs)) : "n/a",
          haveReference ? String.format(Locale.ROOT, "%.2f", median(oursCpu) / median(theirsCpu)) : "n/a");
    }
  }

  /**
   * A run's wall seconds, CPU seconds of all its threads (what other load on the machine does
   * not inflate, unlike wall time), per-block seconds and a free-form note (mask agreement).
   */
  private record Run(double wall, double cpu, double[] blocks, String note) {}

  private static Path writeCalibration(Path file, int nsamples, int seqlen) throws IOException {
    SplittableRandom random = new SplittableRandom(3);
    try (Writer writer = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
      for (int s = 0; s < nsamples; s++) {
        int[] ids = new int[seqlen];
        for (int t = 0; t < seqlen; t++) {
          ids[t] = random.nextInt(TOKENIZER_VOCAB - 1);
        }
        writer.write("{\"input_ids\": " + Arrays.toString(ids) + "}\n");
      }
    }
    return file;
  }

  private static Run runJob(SparkSession spark, Shape shape, PruningMethod method, Path model, Path calibration, Path out, Path log)
      throws IOException {
    PruneOptions options = PruneOptions.builder()
        .model(model.toString())
        .out(out.toString())
        .method(method)
        .target(SparsityTarget.unstructured(0.5))
        .calibration(calibration.toString())
        .nsamples(shape.nsamples)
        .seqlen(shape.seqlen)
        .overwrite(true)
        .build();
    try (PrintStream progress = new PrintStream(Files.newOutputStream(log), true, StandardCharsets.UTF_8)) {
      long cpuStart = processCpuNanos();
      long start = System.nanoTime();
      PruneReport report = new PruneJob(spark, options, progress).run();
      double wall = (System.nanoTime() - start) / 1e9;
      double cpu = (processCpuNanos() - cpuStart) / 1e9;
      JsonNode blocks = report.json().get("blocks");
      double[] seconds = new double[shape.blocks];
      for (JsonNode block : blocks) {
        seconds[block.get("block").asInt()] = block.get("seconds").asDouble();
      }
      return new Run(wall, cpu, seconds, "");
    }
  }

  private static Run runReference(Reference reference, PruningMethod method, Path model, Path calibration, Path out, Path compareWith)
      throws IOException, InterruptedException {
    Process process = new ProcessBuilder(reference.python().toString(), reference.script().toString(), "--model", model.toString(), "--calib",
        calibration.toString(), "--method", method.displayName(), "--out", out.toString(), "--compare", compareWith.toString())
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start();
    String stdout = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    int exit = process.waitFor();
    if (exit != 0) {
      throw new IOException("Cannot run the reference " + reference.script() + ": exit code " + exit + "; output: " + stdout.strip());
    }
    JsonNode json = JSON.readTree(stdout.lines().reduce((first, second) -> second).orElse("{}"));
    double[] blocks = new double[json.get("blocks").size()];
    for (int b = 0; b < blocks.length; b++) {
      blocks[b] = json.get("blocks").get(b).asDouble();
    }
    String note = String.format(Locale.ROOT, "torch %s, %d threads; masks equal to sparkprune's at %.4f%% of weights (lowest linear %.4f%%)",
        json.get("torch").asText(), json.get("threads").asInt(), 100 * json.get("mask_agreement").asDouble(),
        100 * json.get("mask_agreement_min").asDouble());
    return new Run(json.get("seconds_total").asDouble(), json.get("cpu_seconds").asDouble(), blocks, note);
  }

  /** CPU time of every thread of this JVM (in local mode the driver and the executors). */
  private static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  private static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length / 2];
  }

  private static String summary(double[] values) {
    if (Double.isNaN(values[0])) {
      return "not run";
    }
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    return String.format(Locale.ROOT, "median %.1f s (min %.1f, max %.1f over %d rounds)", median(values), sorted[0], sorted[sorted.length - 1],
        values.length);
  }

  /** The methods to run, from a comma-separated list of wanda and sparsegpt. */
  public static List<PruningMethod> methods(String list) {
    List<PruningMethod> methods = new ArrayList<>();
    for (String name : list.split(",")) {
      PruningMethod method = PruningMethod.parse(name.strip());
      dev.sparkprune.tensorio.ValidationException.check(method == PruningMethod.WANDA || method == PruningMethod.SPARSEGPT,
          "Invalid --methods %s: the reference runs wanda and sparsegpt only", list);
      methods.add(method);
    }
    return methods;
  }
}
