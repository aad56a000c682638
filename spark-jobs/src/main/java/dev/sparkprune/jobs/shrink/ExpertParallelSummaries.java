package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.calibration.BlockVisitor;
import dev.sparkprune.jobs.calibration.CalibrationPass;
import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.calibration.ChunkVisit;
import dev.sparkprune.jobs.calibration.ExpertSharding;
import dev.sparkprune.jobs.calibration.SampleChunk;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.structure.BlockSummary;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.DepthScores;
import dev.sparkprune.scoring.structure.StructureCalibration;
import dev.sparkprune.scoring.structure.WidthStatistics;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.shrink.ModelShape;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction2;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * Shrink's chunk summaries when the expert plan shards MoE blocks: every block runs through the
 * {@link CalibrationPass} (its expert-parallel stages for the sharded blocks, so no task holds
 * more than one expert group), with a visitor that is the block's {@link WidthStatistics} hook.
 * The result is the list {@link StructureCalibration#run} gives, bit for bit:
 *
 * <ul>
 *   <li>per chunk and block the hook sees the same calls with the same values: the whole
 *       block's in one visit, or a sharded block's attention in one visit and its routed outputs
 *       (ascending expert order, REAP's saliency) and shared expert in the combine stage's; the
 *       two parts fill disjoint sums, so adding them is exact (x + 0);
 *   <li>each chunk's statistics come back apart (the partial is a map by chunk), so the driver
 *       folds chunk summaries in chunk order as the whole-block path does;
 *   <li>depth scores: each chunk's {@link DepthScores.Accumulator} lives beside its cached
 *       states and observes every block's input and output in block order, between steps;
 *   <li>weight norms: one task per block from its dense linears (read without routed experts).
 * </ul>
 *
 * Memory per task: a sharded block's attention, one expert group and its routed tokens' states
 * (the pass's stages); the depth accumulator's {@code maxSpan} inputs per chunk, as today.
 */
final class ExpertParallelSummaries {
  private ExpertParallelSummaries() {}

  static List<ChunkSummary> collect(JobStages stages, CalibrationSource calibration, ModelShape shape, ExpertSharding sharding, int maxSpan,
      ProgressLog log) throws IOException {
    int blocks = shape.blocks();
    List<StructureCalibration.Norms> norms = norms(stages, blocks);
    int[] experts = new int[blocks];
    for (int b = 0; b < blocks; b++) {
      experts[b] = shape.isSparse(b) ? shape.experts() : 0;
    }
    WidthVisitor visitor = new WidthVisitor(experts);
    // Per block, per chunk: the statistics of the chunk's visit(s).
    List<Map<Integer, WidthStatistics>> widths = new ArrayList<>();
    Map<Integer, DepthScores> depth = new TreeMap<>();
    try (CalibrationPass pass = calibration.embed(stages, blocks, log, sharding)) {
      // Serialized: each read gets its own copy of the accumulators, which the next block's
      // observation updates in place (a retried task starts again from the cached values).
      JavaRDD<ChunkDepth> depths = pass.states().map(new StartDepth(blocks, maxSpan)).persist(StorageLevel.MEMORY_AND_DISK_SER());
      depths.count();
      for (int b = 0; b < blocks; b++) {
        widths.add(perChunk(b, pass.collectAndAdvance(visitor).asMap()));
        // Read the block's output now: the next step releases it.
        stages.describe(String.format(java.util.Locale.ROOT, "block %d/%d: depth scores", b + 1, blocks));
        JavaRDD<ChunkDepth> next = depths.zipPartitions(pass.states(), new ObserveBlock(b)).persist(StorageLevel.MEMORY_AND_DISK_SER());
        next.count();
        depths.unpersist(false);
        depths = next;
      }
      for (Tuple2<Integer, DepthScores> chunk : depths.map(new FinishDepth()).collect()) {
        depth.put(chunk._1(), chunk._2());
      }
      depths.unpersist(false);
    }
    List<ChunkSummary> summaries = new ArrayList<>();
    for (Map.Entry<Integer, DepthScores> chunk : depth.entrySet()) {
      List<BlockSummary> blockSummaries = new ArrayList<>();
      for (int b = 0; b < blocks; b++) {
        WidthStatistics statistics = widths.get(b).get(chunk.getKey());
        if (statistics == null) {
          throw new IllegalStateException("Block " + b + " has no statistics of chunk " + chunk.getKey());
        }
        blockSummaries.add(norms.get(b).summary(b, statistics));
      }
      summaries.add(new ChunkSummary(chunk.getKey(), chunk.getValue(), blockSummaries));
    }
    return summaries;
  }

  /** Block b's statistics per chunk: the whole visit's, plus the attention part's of a sharded block (disjoint sums). */
  private static Map<Integer, WidthStatistics> perChunk(int block, Map<String, Chunks> partials) {
    Chunks whole = partials.get(WidthVisitor.key(block));
    if (whole == null) {
      throw new IllegalStateException("Block " + block + " gave no statistics");
    }
    Chunks attention = partials.get(WidthVisitor.attentionKey(block));
    Map<Integer, WidthStatistics> out = new TreeMap<>();
    whole.byChunk.forEach((chunk, statistics) -> out.put(chunk, attention == null ? statistics : attention.byChunk.get(chunk).plus(statistics)));
    return out;
  }

  private static List<StructureCalibration.Norms> norms(JobStages stages, int blocks) throws IOException {
    List<Integer> indices = new ArrayList<>();
    for (int b = 0; b < blocks; b++) {
      indices.add(b);
    }
    stages.describe("weight norms");
    List<StructureCalibration.Norms> out = new ArrayList<>();
    for (byte[] bytes : stages.jsc().parallelize(indices, Math.max(1, Math.min(blocks, stages.jsc().defaultParallelism())))
        .map(new BlockNorms(stages.context())).collect()) {
      out.add(ShrinkFunctions.deserialize(bytes, StructureCalibration.Norms.class));
    }
    return out;
  }

  /** A block's weight norms, from its dense linears: a MoE block is read without its routed experts. */
  static final class BlockNorms implements Function<Integer, byte[]> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;

    BlockNorms(JobContext context) {
      this.context = context;
    }

    @Override
    public byte[] call(Integer block) throws IOException {
      try (DecoderModel model = context.openModel(context.backend().backend())) {
        BlockWeights weights = model.moe(block).isPresent() ? model.loadBlockWithoutExperts(block) : model.loadBlock(block);
        return ShrinkFunctions.serialize(StructureCalibration.norms(model.layout(), block, weights, ModelShape.of(context.archive().config())));
      }
    }
  }

  /** A key's statistics, chunk by chunk: merging keeps them apart, so the driver folds them in chunk order. */
  static final class Chunks implements Serializable {
    private static final long serialVersionUID = 1L;
    final TreeMap<Integer, WidthStatistics> byChunk = new TreeMap<>();
  }

  /** The shrink statistics as a calibration visitor: {@link WidthStatistics} is each visit's hook. */
  static final class WidthVisitor implements BlockVisitor<Chunks> {
    private static final long serialVersionUID = 1L;
    private final int[] experts;

    WidthVisitor(int[] experts) {
      this.experts = experts.clone();
    }

    static String key(int block) {
      return block + "/block";
    }

    static String attentionKey(int block) {
      return block + "/attention";
    }

    @Override
    public ChunkVisit<Chunks> start(int block, int chunk, ComputeBackend backend) {
      return new Visit(block, chunk, new WidthStatistics(experts[block]));
    }

    @Override
    public Chunks merge(Chunks earlier, Chunks later) {
      for (Map.Entry<Integer, WidthStatistics> chunk : later.byChunk.entrySet()) {
        if (earlier.byChunk.put(chunk.getKey(), chunk.getValue()) != null) {
          throw new IllegalStateException("Chunk " + chunk.getKey() + " folded twice");
        }
      }
      return earlier;
    }

    /** Per-channel sums and per-expert scalars: small. */
    @Override
    public boolean foldOnDriver() {
      return true;
    }
  }

  private static final class Visit implements ChunkVisit<Chunks> {
    private final int block;
    private final int chunk;
    private final WidthStatistics statistics;
    /** Whether a dense linear's input came: the attention part of a sharded block (its expert parts see only routed experts). */
    private boolean sawDense;

    Visit(int block, int chunk, WidthStatistics statistics) {
      this.block = block;
      this.chunk = chunk;
      this.statistics = statistics;
    }

    @Override
    public void accept(List<Linear> linears, float[] input, int tokens, int sequences) {
      sawDense |= linears.get(0).expert().isEmpty();
      statistics.accept(linears, input, tokens, sequences);
    }

    @Override
    public void acceptExpertOutput(int expert, int[] rows, float[] routingWeights, float[] output, int width) {
      statistics.acceptExpertOutput(expert, rows, routingWeights, output, width);
    }

    @Override
    public Map<String, Chunks> finish(HiddenStates input, HiddenStates output) {
      return Map.of(WidthVisitor.key(block), chunks());
    }

    @Override
    public Map<String, Chunks> finishPart() {
      return sawDense ? Map.of(WidthVisitor.attentionKey(block), chunks()) : Map.of();
    }

    private Chunks chunks() {
      Chunks chunks = new Chunks();
      chunks.byChunk.put(chunk, statistics);
      return chunks;
    }
  }

  /** A chunk's depth accumulator and its states at the next block's input. */
  static final class ChunkDepth implements Serializable {
    private static final long serialVersionUID = 1L;
    final int chunk;
    final DepthScores.Accumulator accumulator;
    final HiddenStates input;

    ChunkDepth(int chunk, DepthScores.Accumulator accumulator, HiddenStates input) {
      this.chunk = chunk;
      this.accumulator = Objects.requireNonNull(accumulator, "accumulator is null");
      this.input = input;
    }
  }

  static final class StartDepth implements Function<SampleChunk, ChunkDepth> {
    private static final long serialVersionUID = 1L;
    private final int blocks;
    private final int maxSpan;

    StartDepth(int blocks, int maxSpan) {
      this.blocks = blocks;
      this.maxSpan = maxSpan;
    }

    @Override
    public ChunkDepth call(SampleChunk chunk) {
      return new ChunkDepth(chunk.index(), new DepthScores.Accumulator(blocks, maxSpan), chunk.hidden());
    }
  }

  /** Block b's input (kept beside the accumulator) and output (the pass's states after the step), chunk by chunk. */
  static final class ObserveBlock implements FlatMapFunction2<Iterator<ChunkDepth>, Iterator<SampleChunk>, ChunkDepth> {
    private static final long serialVersionUID = 1L;
    private final int block;

    ObserveBlock(int block) {
      this.block = block;
    }

    @Override
    public Iterator<ChunkDepth> call(Iterator<ChunkDepth> depths, Iterator<SampleChunk> outputs) {
      List<ChunkDepth> out = new ArrayList<>();
      while (depths.hasNext()) {
        ChunkDepth depth = depths.next();
        SampleChunk output = outputs.next();
        if (output.index() != depth.chunk) {
          throw new IllegalStateException("Depth scores of chunk " + depth.chunk + " met the states of chunk " + output.index());
        }
        HiddenStates input = depth.input;
        depth.accumulator.observe(block, input.values(), output.hidden().values(), input.tokens(), input.width());
        out.add(new ChunkDepth(depth.chunk, depth.accumulator, output.hidden()));
      }
      if (outputs.hasNext()) {
        throw new IllegalStateException("Block " + block + " has states of chunks without depth scores");
      }
      return out.iterator();
    }
  }

  /** A chunk's depth scores: small sums only come back, never the states or the inputs the accumulator keeps. */
  static final class FinishDepth implements Function<ChunkDepth, Tuple2<Integer, DepthScores>> {
    private static final long serialVersionUID = 1L;

    @Override
    public Tuple2<Integer, DepthScores> call(ChunkDepth depth) {
      return new Tuple2<>(depth.chunk, depth.accumulator.result());
    }
  }
}
