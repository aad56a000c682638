package dev.sparkprune.jobs.bench;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.jobs.prune.PruneJob;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.output.PruneReport;
import dev.sparkprune.jobs.spark.SparkSessions;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.SplittableRandom;
import org.apache.spark.sql.SparkSession;

/**
 * Prunes a generated ~1B-parameter BF16 Llama-style archive (hidden 2048, 18 blocks, 16 heads,
 * 8 KV heads, intermediate 5632, vocab 32000) with Wanda on {@code local[2]}, and reports wall
 * time, the stage split from the report, summed scoring-task time and peak heap. In local mode
 * the driver and the executor share one JVM, so the heap figure covers both.
 */
public final class PruneBenchmark {
  private PruneBenchmark() {}

  /** 200,000 characters of random letters and spaces (seed 3): the benchmarks' calibration text. */
  static void writeCalibrationText(Path text) throws IOException {
    StringBuilder words = new StringBuilder();
    SplittableRandom random = new SplittableRandom(3);
    while (words.length() < 200_000) {
      words.append((char) ('a' + random.nextInt(26))).append(random.nextInt(6) == 0 ? " " : "");
    }
    try (OutputStream stream = Files.newOutputStream(text)) {
      stream.write(words.toString().getBytes(StandardCharsets.UTF_8));
    }
  }

  public static void run(Path directory, int blocks, int nsamples, int seqlen, boolean global, PrintStream out) throws IOException {
    Path model = directory.resolve("model-1b");
    Path text = directory.resolve("calibration.txt");
    long generateStart = System.nanoTime();
    SyntheticArchive.builder(SyntheticArchive.llamaConfig(2048, blocks, 16, 8, 5632, 32000)).dtype(DType.BF16).shards(4).seed(1).build()
        .write(new LocalFileIO(), model.toString());
    SyntheticArchive.writeByteLevelTokenizer(new LocalFileIO(), model.toString());
    writeCalibrationText(text);
    long bytes;
    try (var files = Files.list(model)) {
      bytes = files.mapToLong(path -> path.toFile().length()).sum();
    }
    out.printf(Locale.ROOT, "prune: generated %.2f GB BF16 archive in %.1f s (%s)%n", bytes / 1e9, (System.nanoTime() - generateStart) / 1e9, model);

    for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
      pool.resetPeakUsage();
    }
    SparkSession spark = SparkSessions.getOrCreate("local[2]");
    PruneOptions options = global
        ? PruneOptions.builder().model(model.toString()).out(directory.resolve("out").toString()).method(PruningMethod.MAGNITUDE)
            .target(SparsityTarget.unstructured(0.5)).allocation(PruneOptions.Allocation.GLOBAL).build()
        : PruneOptions.builder()
            .model(model.toString())
            .out(directory.resolve("out").toString())
            .method(PruningMethod.WANDA)
            .target(SparsityTarget.unstructured(0.5))
            .calibration(text.toString())
            .nsamples(nsamples)
            .seqlen(seqlen)
            .build();
    long start = System.nanoTime();
    PruneReport report = new PruneJob(spark, options, out).run();
    double wall = (System.nanoTime() - start) / 1e9;
    long peakHeap = 0;
    for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
      if (pool.getType() == MemoryType.HEAP) {
        peakHeap += pool.getPeakUsage().getUsed();
      }
    }
    JsonNode json = report.json();
    double scoring = 0;
    for (JsonNode layer : json.get("layers")) {
      scoring += layer.get("seconds").asDouble();
    }
    JsonNode seconds = json.get("seconds");
    if (global) {
      out.printf(Locale.ROOT, "prune: %,d parameters, global magnitude 50%%, local[2]: wall %.1f s; %,d bytes of histograms to the driver;"
              + " peak heap %.2f GB%n",
          json.get("model").get("parameters").asLong(), wall, json.get("allocation").get("histogram_bytes_to_driver").asLong(), peakHeap / 1e9);
      return;
    }
    out.printf(Locale.ROOT,
        "prune: %,d parameters, Wanda 50%%, %d samples x %d tokens, local[2]: wall %.1f s; plan %.1f s, calibrate+score %.1f s, "
            + "archive write %.1f s; scoring tasks %.1f s summed (read + kernel + staged write, 2 at a time); peak heap %.2f GB "
            + "(driver and executor share the JVM in local mode; max %.2f GB)%n",
        json.get("model").get("parameters").asLong(), nsamples, seqlen, wall, seconds.get("plan").asDouble(),
        seconds.get("prune").asDouble() - seconds.get("plan").asDouble(), seconds.get("write").asDouble() - seconds.get("prune").asDouble(),
        scoring, peakHeap / 1e9, Runtime.getRuntime().maxMemory() / 1e9);
    for (JsonNode block : json.get("blocks")) {
      out.printf(Locale.ROOT, "  block %d: %.1f s%n", block.get("block").asInt(), block.get("seconds").asDouble());
    }
  }
}
