package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.prune.calibration.CalibrationMemory;
import dev.sparkprune.jobs.prune.calibration.CalibrationSamples;
import dev.sparkprune.jobs.prune.output.OutputGuard;
import dev.sparkprune.jobs.prune.PruneJob;
import dev.sparkprune.jobs.prune.output.Publisher;
import dev.sparkprune.jobs.spark.SerializableConfiguration;
import dev.sparkprune.jobs.spark.FaultInjection;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobGroups;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.KeepCounts;
import dev.sparkprune.scoring.structure.ShrinkDecision;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import scala.Tuple2;

/**
 * The shrink job's driver: checks the request against the config, samples calibration windows,
 * gathers small per-chunk summaries from the executors (depth scores, channel and head
 * statistics, expert saliency, weight norms), chooses what to remove, has one task per shard
 * write the shrunk archive, optionally prunes it with the prune job, and publishes atomically.
 * No weight or hidden state passes through the driver.
 *
 * <p>Outputs under --out: {@code model/} (the shrunk, or shrunk then pruned, archive),
 * {@code report.json}, and with --then-prune {@code masks/} and {@code prune-report.json}.
 */
public final class ShrinkJob {
  private final SparkSession spark;
  private final ShrinkOptions options;
  private final PrintStream progress;
  private final long start = System.nanoTime();

  public ShrinkJob(SparkSession spark, ShrinkOptions options, PrintStream progress) {
    this.spark = spark;
    this.options = options;
    this.progress = progress;
  }

  /** The opened and checked inputs of a run, with its calibration windows: {@link #check} makes them once, before Spark starts. */
  public record Inputs(ModelArchive archive, ModelShape shape, Tokenizer tokenizer, int[][] samples) {}

  /**
   * Checks everything that needs no Spark: the model, the request (and --then-prune's pattern
   * against the shrunk widths), --out, the tokenizer and --seqlen; samples the calibration windows.
   */
  public static Inputs check(Configuration conf, ShrinkOptions options) throws IOException {
    return check(conf, options, java.util.Optional.empty(), 0);
  }

  /** As {@link #check(Configuration, ShrinkOptions)}, refusing before sampling what the executors cannot hold ({@link CalibrationMemory}). */
  public static Inputs check(Configuration conf, ShrinkOptions options, CalibrationMemory.Executors executors, int defaultPartitions)
      throws IOException {
    return check(conf, options, java.util.Optional.of(executors), defaultPartitions);
  }

  private static Inputs check(Configuration conf, ShrinkOptions options, java.util.Optional<CalibrationMemory.Executors> executors,
      int defaultPartitions) throws IOException {
    HadoopFileIO io = new HadoopFileIO(conf);
    ModelArchive archive = ModelArchive.open(io, options.model());
    ModelShape shape = ModelShape.of(archive.config());
    options.settings().checkAgainst(shape);
    checkPatternFits(options, shape);
    OutputGuard.check(conf, options.asPruneOptions(options.model(), options.out(), options.overwrite()));
    int maxPositions = Models.maxPositions(archive.config(), shape.modelType());
    ValidationException.check(
        options.seqlen() <= maxPositions,
        "Invalid --seqlen %d: the model supports at most %d positions (max_position_embeddings in config.json)",
        options.seqlen(), maxPositions);
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    Models.checkTokenizer(archive, tokenizer);
    if (executors.isPresent()) {
      checkCalibrationMemory(archive, shape, options, executors.get(), defaultPartitions);
    }
    int[][] samples = CalibrationSamples.sample(io, options.calibration(), tokenizer, options.nsamples(), options.seqlen(), options.seed());
    return new Inputs(archive, shape, tokenizer, samples);
  }

  /**
   * --then-prune with an N:M pattern prunes the shrunk model: M must divide every width its
   * linears read (the hidden size, the kept attention width, the kept MLP channels, the experts'
   * widths), which the shrink settings fix before any statistics are gathered.
   */
  private static void checkPatternFits(ShrinkOptions options, ModelShape shape) {
    if (options.thenPrune().isEmpty() || !options.thenTarget().isStructured()) {
      return;
    }
    ShrinkSettings settings = options.settings();
    java.util.Map<String, Integer> widths = new java.util.LinkedHashMap<>();
    widths.put("the linears reading hidden states (hidden_size)", shape.hidden());
    int kvGroups = KeepCounts.kvGroups(shape.kvHeads(), settings.headsKeep());
    widths.put("o_proj after --heads-keep (kept heads x head_dim)", kvGroups * shape.headsPerGroup() * shape.headDim());
    if (shape.hasDenseMlp()) {
      widths.put("down_proj after --mlp-keep (kept MLP channels)", KeepCounts.mlpChannels(shape.intermediate(), settings.mlpKeep()));
    }
    shape.moe().ifPresent(moe -> {
      widths.put("the experts' down_proj (moe_intermediate_size)", moe.expertIntermediate());
      if (moe.hasSharedExpert()) {
        widths.put("the shared expert's down_proj (shared_expert_intermediate_size)", moe.sharedIntermediate());
      }
    });
    widths.forEach((what, width) -> ValidationException.check(width % options.thenTarget().groupSize() == 0,
        "Cannot use --then-prune with --pattern %s: M = %d does not divide %s, %d wide; choose a pattern whose M divides it",
        options.thenTarget(), options.thenTarget().groupSize(), what, width));
  }

  /**
   * Refuses calibration windows the executors cannot hold ({@link CalibrationMemory}); {@code
   * defaultPartitions} is what the job uses when --partitions is not given.
   */
  private static void checkCalibrationMemory(ModelArchive archive, ModelShape shape, ShrinkOptions options,
      CalibrationMemory.Executors executors, int defaultPartitions) {
    dev.sparkprune.tensorio.arch.ModelLayout layout = dev.sparkprune.tensorio.arch.Architectures.layout(archive);
    int topK = shape.moe().map(moe -> moe.topK()).orElse(1);
    CalibrationMemory.estimate(options.nsamples(), options.seqlen(), shape.hidden(), CalibrationMemory.widestPerToken(layout, topK),
            options.chunkSize(), options.partitions() > 0 ? options.partitions() : defaultPartitions)
        .check(String.format(Locale.ROOT, "%d samples x %d tokens (--nsamples, --seqlen)", options.nsamples(), options.seqlen()), executors);
  }

  public ShrinkReport run() throws IOException {
    return run(check(spark.sparkContext().hadoopConfiguration(), options,
        CalibrationMemory.Executors.of(spark.sparkContext().master(), spark.sparkContext().getConf()), spark.sparkContext().defaultParallelism()));
  }

  /** Runs on inputs already opened and checked: the CLI checks them before it starts Spark. */
  public ShrinkReport run(Inputs inputs) throws IOException {
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    HadoopFileIO io = new HadoopFileIO(conf);
    ModelArchive archive = inputs.archive();
    ModelShape shape = inputs.shape();
    int[][] samples = inputs.samples();

    String runId = UUID.randomUUID().toString().substring(0, 8);
    String jobGroup = "sparkprune-shrink-" + runId;
    spark.sparkContext().setJobGroup(jobGroup, "sparkprune shrink " + options.model(), false);
    Publisher publisher = Publisher.prepare(conf, options.out(), runId, options.overwrite(), FaultInjection.NONE,
        OutputGuard.inputs(options.asPruneOptions(options.model(), options.out(), options.overwrite())));
    try {
      JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
      Broadcast<SerializableConfiguration> confBroadcast = jsc.broadcast(new SerializableConfiguration(conf));
      JobContext source = new JobContext(
          archive.location(), publisher.staging(), confBroadcast, spark.sparkContext().conf().getInt("spark.task.cpus", 1),
          FaultInjection.parse(spark.conf()));

      ShrinkDecision decision = decide(jsc, source, shape, samples);
      double calibrated = seconds();
      ShrunkArchive shrunk = new ShrunkArchive(archive, decision.plan());
      ShrinkReport report = new ShrinkReport(options, decision, archive.totalParameters(), shrunk.parameters());
      report.stage("statistics", calibrated);
      log("decided: drop blocks %s, keep %d MLP channels, %d of %d KV groups, %d experts per block (%.1f s)",
          decision.droppedBlocks(), decision.plan().intermediate(), decision.plan().kvHeads(), shape.kvHeads(), decision.plan().experts(),
          calibrated);

      String staging = publisher.staging();
      String shrunkDirectory = io.resolve(staging, options.thenPrune().isEmpty() ? "model" : "shrunk");
      writeArchive(jsc, io, source, shrunk, shrunkDirectory);
      report.stage("write", seconds());
      log("wrote the shrunk archive: %,d -> %,d parameters in %d shard(s) (%.1f s)",
          archive.totalParameters(), shrunk.parameters(), shrunk.shards().size(), seconds());
      if (!options.thenPrune().isEmpty()) {
        thenPrune(conf, io, staging, shrunkDirectory);
        report.stage("then_prune", seconds());
      }
      report.stage("total", seconds());
      report.write(io, io.resolve(staging, "report.json"));
      publisher.publish();
      log("published %s", publisher.out());
      return report;
    } catch (Throwable e) {
      JobGroups.cancelAndAwait(spark.sparkContext(), jobGroup);
      publisher.abort();
      throw e;
    }
  }

  /** Summaries from the executors, folded in chunk order on the driver, and the choice made from them. */
  private ShrinkDecision decide(JavaSparkContext jsc, JobContext source, ModelShape shape, int[][] samples)
      throws IOException {
    List<Tuple2<Integer, int[][]>> chunks = CalibrationSamples.chunks(samples, options.chunkSize());
    int partitions = Math.min(chunks.size(), options.partitions() > 0 ? options.partitions() : jsc.defaultParallelism());
    log("calibration: %d samples x %d tokens in %d chunks on %d partitions", samples.length, options.seqlen(), chunks.size(), partitions);
    List<byte[]> collected = jsc.parallelize(chunks, partitions)
        .mapPartitions(new ShrinkFunctions.CollectSummaries(source, options.settings().maxSpan()))
        .collect();
    List<ChunkSummary> summaries = new ArrayList<>();
    for (byte[] bytes : collected) {
      summaries.add(ShrinkFunctions.deserialize(bytes));
    }
    return ShrinkDecision.choose(shape, options.settings(), ChunkSummary.foldInOrder(summaries));
  }

  /** One task per output shard; config, index and tokenizer files from the driver (small). */
  private void writeArchive(
      JavaSparkContext jsc, HadoopFileIO io, JobContext source, ShrunkArchive shrunk, String directory)
      throws IOException {
    List<String> shards = shrunk.shards();
    jsc.parallelize(shards, shards.size()).map(new ShrinkFunctions.WriteShard(source, shrunk.plan(), directory)).collect();
    for (Map.Entry<String, byte[]> file : shrunk.smallFiles().entrySet()) {
      try (OutputStream out = io.newOutputFile(io.resolve(directory, file.getKey())).create()) {
        out.write(file.getValue());
      }
    }
  }

  /**
   * Runs the prune job on the staged shrunk archive, into a staged folder of its own, then moves
   * its model, masks and report into this run's staging folder.
   */
  private void thenPrune(Configuration conf, HadoopFileIO io, String staging, String shrunkDirectory) throws IOException {
    String prunedOut = io.resolve(staging, "pruned");
    new PruneJob(spark, options.asPruneOptions(shrunkDirectory, prunedOut, false), progress).run();
    FileSystem fs = new Path(staging).getFileSystem(conf);
    rename(fs, new Path(prunedOut, "model"), new Path(staging, "model"));
    rename(fs, new Path(prunedOut, "masks"), new Path(staging, "masks"));
    rename(fs, new Path(prunedOut, "report.json"), new Path(staging, "prune-report.json"));
    fs.delete(new Path(prunedOut), true);
    fs.delete(new Path(shrunkDirectory), true);
  }

  private static void rename(FileSystem fs, Path from, Path to) throws IOException {
    if (!fs.rename(from, to)) {
      throw new IOException("Cannot move " + from + " to " + to + " in the staging folder");
    }
  }

  private double seconds() {
    return (System.nanoTime() - start) / 1e9;
  }

  private void log(String format, Object... args) {
    progress.printf(Locale.ROOT, "[shrink %6.1fs] %s%n", seconds(), String.format(Locale.ROOT, format, args));
  }
}
