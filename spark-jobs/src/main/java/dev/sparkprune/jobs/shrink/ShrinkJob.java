package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.gradient.GradientFiles;
import dev.sparkprune.jobs.gradient.GradientStage;
import dev.sparkprune.jobs.output.OutputGuard;
import dev.sparkprune.jobs.output.Publisher;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.jobs.spark.StagedRun;
import dev.sparkprune.scoring.model.DecoderBackward;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.structure.AttentionGroups;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.ShrinkDecision;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.scoring.structure.TaylorImportance;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.ModelLayout;
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
import java.util.Map;
import java.util.Optional;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import scala.Tuple2;

/**
 * The shrink job's driver: checks the request against the config, samples calibration windows,
 * gathers small per-chunk summaries from the executors (depth scores, channel and head
 * statistics, expert saliency, weight norms), chooses what to remove, has one task per shard
 * write the shrunk archive, and publishes atomically. No weight or hidden state passes through
 * the driver. {@code --then-prune} runs these stages and then the prune job in one run
 * (ShrinkThenPrune, above both jobs).
 *
 * <p>Outputs under --out: {@code model/} (the shrunk archive) and {@code report.json}.
 */
public final class ShrinkJob {
  private final SparkSession spark;
  private final ShrinkOptions options;
  private final ProgressLog log;

  public ShrinkJob(SparkSession spark, ShrinkOptions options, PrintStream progress) {
    this.spark = spark;
    this.options = options;
    this.log = new ProgressLog(progress, "shrink");
  }

  /** The opened and checked inputs of a run: {@link #check} makes them once, before Spark starts. */
  public record Inputs(ModelArchive archive, ModelShape shape, Tokenizer tokenizer) {}

  /** Checks everything that needs no Spark: the model, the request, --out, the tokenizer and --seqlen. */
  public static Inputs check(Configuration conf, ShrinkOptions options) throws IOException {
    HadoopFileIO io = new HadoopFileIO(conf);
    ModelArchive archive = ModelArchive.open(io, options.model());
    ModelShape shape = ModelShape.of(archive.config());
    options.settings().checkAgainst(shape);
    OutputGuard.check(conf, options.output());
    int maxPositions = Models.maxPositions(archive.config(), shape.modelType());
    ValidationException.check(
        options.seqlen() <= maxPositions,
        "Invalid --seqlen %d: the model supports at most %d positions (max_position_embeddings in config.json)",
        options.seqlen(), maxPositions);
    ValidationException.check(!options.settings().needsGradients() || DecoderBackward.supports(shape.modelType()),
        "Cannot use a taylor metric on %s: model_type '%s' has no backward pass for the gradients (supported: %s)",
        options.model(), shape.modelType(), String.join(", ", DecoderBackward.MODEL_TYPES));
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    Models.checkTokenizer(archive, tokenizer);
    return new Inputs(archive, shape, tokenizer);
  }

  public ShrinkReport run() throws IOException {
    return run(check(spark.sparkContext().hadoopConfiguration(), options));
  }

  /** Runs on inputs already opened and checked: the CLI checks them before it starts Spark. */
  public ShrinkReport run(Inputs inputs) throws IOException {
    if (!options.thenPrune().isEmpty()) {
      throw new IllegalStateException("Cannot prune in the shrink job: --then-prune runs through workflow.ShrinkThenPrune");
    }
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    CalibrationSource calibration = sample(inputs);
    return StagedRun.start(spark, "shrink", options.model()).publish(Publisher.preparer(conf, options.output()), log,
        run -> finish(run, shrinkInto(run, inputs, calibration, "model")));
  }

  /** The run's progress log ("[shrink  12.3s] ..."). */
  public ProgressLog log() {
    return log;
  }

  /** The calibration windows, sampled on the driver before the run starts. */
  public CalibrationSource sample(Inputs inputs) throws IOException {
    return CalibrationSource.sample(new HadoopFileIO(spark.sparkContext().hadoopConfiguration()), options.calibrationSettings(),
        inputs.tokenizer());
  }

  /**
   * The shrink stages inside a run: statistics from the executors, the decision, and the shrunk
   * archive written by one task per shard into {@code folder} of the staging folder.
   */
  public ShrinkReport shrinkInto(StagedRun run, Inputs inputs, CalibrationSource calibration, String folder) throws IOException {
    HadoopFileIO io = new HadoopFileIO(spark.sparkContext().hadoopConfiguration());
    ModelArchive archive = inputs.archive();
    JobStages stages = run.stages(archive.location(), Optional.empty());

    ShrinkDecision decision = decide(stages, inputs, calibration);
    double calibrated = log.seconds();
    ShrunkArchive shrunk = new ShrunkArchive(archive, decision.plan());
    ShrinkReport report = new ShrinkReport(options, decision, archive.totalParameters(), shrunk.parameters());
    report.stage("statistics", calibrated);
    log.line("decided: drop blocks %s, keep %d MLP channels, %d of %d KV groups, %d experts per block (%.1f s)",
        decision.droppedBlocks(), decision.plan().intermediate(), decision.plan().kvHeads(), inputs.shape().kvHeads(),
        decision.plan().experts(), calibrated);

    writeArchive(stages, io, shrunk, io.resolve(run.staging(), folder));
    report.stage("write", log.seconds());
    log.line("wrote the shrunk archive: %,d -> %,d parameters in %d shard(s) (%.1f s)",
        archive.totalParameters(), shrunk.parameters(), shrunk.shards().size(), log.seconds());
    return report;
  }

  /** The run's last step before publishing: the total time, and report.json in the staging folder. */
  public ShrinkReport finish(StagedRun run, ShrinkReport report) throws IOException {
    HadoopFileIO io = new HadoopFileIO(spark.sparkContext().hadoopConfiguration());
    report.stage("total", log.seconds());
    report.write(io, io.resolve(run.staging(), "report.json"));
    return report;
  }

  /**
   * Summaries from the executors, folded in chunk order on the driver, and the choice made from
   * them. The chunks are the calibration source's, as prune's; each partition runs its chunks
   * through the dense model block-major (StructureCalibration), not through the calibration
   * pass: the depth scores compare a chunk's input at block l with its input at block l + n,
   * and the summaries fold in chunk order (see ARCHITECTURE.md).
   */
  private ShrinkDecision decide(JobStages stages, Inputs inputs, CalibrationSource calibration) throws IOException {
    ModelShape shape = inputs.shape();
    JavaSparkContext jsc = stages.jsc();
    List<Tuple2<Integer, int[][]>> chunks = calibration.chunks();
    int partitions = calibration.partitions(jsc);
    calibration.logChunks(log, chunks.size(), partitions);
    List<byte[]> collected = jsc.parallelize(chunks, partitions)
        .mapPartitions(new ShrinkFunctions.CollectSummaries(stages.context(), options.settings().maxSpan()))
        .collect();
    List<ChunkSummary> summaries = new ArrayList<>();
    for (byte[] bytes : collected) {
      summaries.add(ShrinkFunctions.deserialize(bytes));
    }
    TaylorImportance taylor = options.settings().needsGradients() ? taylorImportance(stages, inputs, calibration) : TaylorImportance.NONE;
    return ShrinkDecision.choose(shape, options.settings(), ChunkSummary.foldInOrder(summaries), taylor);
  }

  /**
   * --width-metric taylor or --layer-metric taylor: the dense model's gradient set over the same
   * calibration chunks (the distributed backward pass, written to a private folder of the staging
   * area and dropped after), which gives each block's removal importance; for the width metric,
   * one task per block turning its linears' mean gradients into channel and KV group scores.
   * Only those vectors reach the driver.
   */
  private TaylorImportance taylorImportance(JobStages stages, Inputs inputs, CalibrationSource calibration) throws IOException {
    HadoopFileIO io = stages.context().io();
    String directory = io.resolve(stages.context().staging(), "_gradients");
    ModelLayout layout = Architectures.layout(inputs.archive());
    // A private set, dropped before publishing: nothing reuses it, so it needs no model fingerprint.
    double[] blockRemoval = GradientStage.compute(stages, calibration, layout, directory, "", log).blockImportance();
    ModelShape shape = inputs.shape();
    ShrinkSettings settings = options.settings();
    if (settings.widthMetric() != ShrinkSettings.WidthMetric.TAYLOR || settings.mlpKeep() == 1 && settings.headsKeep() == 1) {
      GradientFiles.deleteRecursively(io, directory);
      return TaylorImportance.NONE.withBlockRemoval(blockRemoval);
    }
    List<Integer> blocks = new ArrayList<>();
    for (int b = 0; b < shape.blocks(); b++) {
      blocks.add(b);
    }
    stages.describe("taylor scores");
    List<TaylorImportance.Block> scores = new ArrayList<>();
    for (byte[] bytes : stages.jsc().parallelize(blocks, Math.max(1, Math.min(blocks.size(), stages.jsc().defaultParallelism())))
        .map(new ShrinkFunctions.TaylorBlock(stages.context(), directory,
            new AttentionGroups(shape.heads(), shape.kvHeads(), shape.headDim())))
        .collect()) {
      scores.add(ShrinkFunctions.deserialize(bytes, TaylorImportance.Block.class));
    }
    GradientFiles.deleteRecursively(io, directory);
    log.line("taylor: scored the MLP channels and KV groups of %d blocks from the gradients", scores.size());
    return TaylorImportance.of(scores).withBlockRemoval(blockRemoval);
  }

  /** One task per output shard; config, index and tokenizer files from the driver (small). */
  private static void writeArchive(JobStages stages, HadoopFileIO io, ShrunkArchive shrunk, String directory) throws IOException {
    List<String> shards = shrunk.shards();
    stages.jsc().parallelize(shards, shards.size()).map(new ShrinkFunctions.WriteShard(stages.context(), shrunk.plan(), directory)).collect();
    for (Map.Entry<String, byte[]> file : shrunk.smallFiles().entrySet()) {
      try (OutputStream out = io.newOutputFile(io.resolve(directory, file.getKey())).create()) {
        out.write(file.getValue());
      }
    }
  }
}
