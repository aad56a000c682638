package dev.sparkprune.jobs.calibration;

import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * The calibration pass, block by block, over hidden states cached on the executors (never
 * collected): embed the samples, then for each block one Spark stage in which every chunk of
 * samples runs through the block as one batch, with a job's {@link BlockVisitor} as the
 * block's hooks. Each step returns the visitor's partials per key, folded over the chunks
 * ({@link PairwiseFold}; tasks fold their own chunks first, so a few partials per partition travel): on
 * the driver, brought back by the step's own job, when the visitor says they are small; else
 * distributed by key, for the tasks that need them (see {@link BlockPartials}).
 *
 * <pre>{@code
 * try (CalibrationPass pass = source.embed(stages, blocks, log)) {
 *   for (int b = 0; b < blocks; b++) {
 *     Map<String, Influence> influence = pass.collectAndAdvance(new BlockInfluence()).asMap(); // dense
 *   }
 * }
 * }</pre>
 *
 * The sequential prune job uses {@link #collect} for block 0, then {@link #advanceThenCollect}:
 * the task that advances a chunk through pruned block b also collects block b+1's statistics.
 * Consume a step's partials before the next step: each step releases the one before it.
 */
public final class CalibrationPass implements AutoCloseable {
  private final JobContext context;
  private final JobStages stages;
  private final int blocks;
  private final int chunks;
  private final int partitions;
  /** The blocks run expert-parallel, with their expert groups. */
  private final ExpertSharding sharding;
  /** Which partition caches each chunk's states: where an expert-parallel block returns its outputs. */
  private final int[] partitionOfChunk;
  /** The cached RDDs behind {@link #states}: the embedded chunks, then the last step's. */
  private List<JavaRDD<?>> cached;
  private JavaRDD<SampleChunk> states;
  /** The block whose input {@link #states} holds. */
  private int position;

  private CalibrationPass(
      JobContext context, JobStages stages, int blocks, ExpertSharding sharding, int[] partitionOfChunk, JavaRDD<SampleChunk> embedded) {
    this.context = context;
    this.stages = stages;
    this.blocks = blocks;
    this.chunks = partitionOfChunk.length;
    this.partitions = embedded.getNumPartitions();
    this.sharding = sharding;
    this.partitionOfChunk = partitionOfChunk;
    this.cached = List.of(embedded);
    this.states = embedded;
  }

  /**
   * Embeds fixed chunks of samples ({@link CalibrationSource#chunks}: in order, never by
   * partitions) spread over {@code partitions} partitions.
   */
  static CalibrationPass embed(JobStages stages, List<Tuple2<Integer, int[][]>> chunks, int partitions, int blocks) {
    return embed(stages, chunks, partitions, blocks, ExpertSharding.none());
  }

  /** The same, with the blocks {@code sharding} names run expert-parallel ({@link ShardedBlock}). */
  static CalibrationPass embed(JobStages stages, List<Tuple2<Integer, int[][]>> chunks, int partitions, int blocks, ExpertSharding sharding) {
    JavaSparkContext jsc = stages.jsc();
    JobContext context = stages.context();
    stages.describe("calibration: embed");
    JavaRDD<SampleChunk> embedded = stages.onGpus(jsc.parallelize(chunks, partitions)
        .map(new CalibrationSteps.EmbedChunk(context)))
        .persist(StorageLevel.MEMORY_AND_DISK());
    // Its own stage (a retried embed task redoes only the embedding), which also says where
    // each chunk is cached: later steps keep the partitioning.
    int[] partitionOfChunk = new int[chunks.size()];
    for (Tuple2<Integer, Integer> placed : embedded.mapPartitionsWithIndex(new CalibrationSteps.ChunkPlaces(), true).collect()) {
      partitionOfChunk[placed._1()] = placed._2();
    }
    return new CalibrationPass(context, stages, blocks, sharding, partitionOfChunk, embedded);
  }

  /**
   * A forward pass over fixed batches of token windows (perplexity's), not calibration samples:
   * batch i is chunk i, one forward batch through every block, spread over {@code partitions}
   * partitions; the blocks {@code sharding} names run expert-parallel. Move the states with
   * {@link #advance} and read them after the last block with {@link #states}.
   */
  public static CalibrationPass embedBatches(
      JobStages stages, List<Tuple2<Integer, int[][]>> batches, int partitions, int blocks, ExpertSharding sharding) {
    return embed(stages, batches, Math.max(1, Math.min(partitions, batches.size())), blocks, sharding);
  }

  /** Runs the block at {@link #position} (whole or expert-parallel) and moves the states to its output; nothing collected. */
  public void advance() {
    collectAndAdvance(new AdvanceOnly());
  }

  public int chunks() {
    return chunks;
  }

  public int partitions() {
    return partitions;
  }

  /** The block whose input the cached states hold. */
  public int position() {
    return position;
  }

  /** Runs the dense block at {@link #position} with the visitor; the states stay at its input. */
  public <P extends Serializable> BlockPartials<P> collect(BlockVisitor<P> visitor) {
    return step(CalibrationSteps.Step.NO_ADVANCE, BlockEdit.NONE, position, visitor, false, "statistics");
  }

  /** Runs the dense block at {@link #position} with the visitor; the states move on to its output. */
  public <P extends Serializable> BlockPartials<P> collectAndAdvance(BlockVisitor<P> visitor) {
    return step(CalibrationSteps.Step.NO_ADVANCE, BlockEdit.NONE, position, visitor, true, "statistics");
  }

  /**
   * Advances the states through the block at {@link #position} as {@code edit} changed it (the
   * pruned block), then runs the dense next block with the visitor: one stage, one pass over
   * the cached states. The states end at the next block's input.
   */
  public <P extends Serializable> BlockPartials<P> advanceThenCollect(BlockEdit edit, BlockVisitor<P> visitor) {
    if (position + 1 >= blocks) {
      throw new IllegalStateException("Cannot advance past block " + position + ": the model has " + blocks + " blocks");
    }
    return step(position, edit, position + 1, visitor, false, "advance + statistics");
  }

  private <P extends Serializable> BlockPartials<P> step(
      int advanceBlock, BlockEdit edit, int collectBlock, BlockVisitor<P> visitor, boolean keepDenseOutput, String what) {
    if (collectBlock >= blocks) {
      throw new IllegalStateException("Cannot calibrate block " + collectBlock + ": the model has " + blocks + " blocks");
    }
    if (advanceBlock != CalibrationSteps.Step.NO_ADVANCE && (sharding.sharded(advanceBlock) || sharding.sharded(collectBlock))) {
      // An expert-parallel block is three stages of its own: advance first, then collect.
      run(advanceBlock, edit, new AdvanceOnly(), true, "advance");
      return run(collectBlock, BlockEdit.NONE, visitor, keepDenseOutput, what);
    }
    if (advanceBlock == CalibrationSteps.Step.NO_ADVANCE) {
      return run(collectBlock, BlockEdit.NONE, visitor, keepDenseOutput, what);
    }
    JavaRDD<CalibrationSteps.StepOutput<P>> outputs = stages.onGpus(states.mapPartitions(
            new CalibrationSteps.Step<>(context, advanceBlock, edit, collectBlock, visitor, keepDenseOutput, chunks), true))
        .persist(StorageLevel.MEMORY_AND_DISK());
    stages.describe(String.format(Locale.ROOT, "block %d/%d: %s", collectBlock + 1, blocks, what));
    return finish(outputs, outputs.flatMapToPair(new CalibrationSteps.PartialsOf<>()), List.of(outputs), visitor,
        keepDenseOutput ? collectBlock + 1 : collectBlock);
  }

  /** Runs block {@code block} as {@code edit} left it, whole or expert-parallel, with the visitor. */
  private <P extends Serializable> BlockPartials<P> run(int block, BlockEdit edit, BlockVisitor<P> visitor, boolean keepOutput, String what) {
    int next = keepOutput ? block + 1 : block;
    if (sharding.sharded(block)) {
      ShardedBlock.Run<P> sharded = ShardedBlock.run(stages, states, partitionOfChunk, block, blocks, edit, visitor, keepOutput, sharding.groups(block));
      stages.describe(String.format(Locale.ROOT, "block %d/%d: %s", block + 1, blocks, what));
      return finish(sharded.outputs(), sharded.partials(), sharded.cached(), visitor, next);
    }
    JavaRDD<CalibrationSteps.StepOutput<P>> outputs = stages.onGpus(states.mapPartitions(
            new CalibrationSteps.Step<>(context, CalibrationSteps.Step.NO_ADVANCE, BlockEdit.NONE, block, edit, visitor, keepOutput, chunks), true))
        .persist(StorageLevel.MEMORY_AND_DISK());
    stages.describe(String.format(Locale.ROOT, "block %d/%d: %s", block + 1, blocks, what));
    return finish(outputs, outputs.flatMapToPair(new CalibrationSteps.PartialsOf<>()), List.of(outputs), visitor, next);
  }

  /**
   * Folds a step's partial nodes by key (on the driver when small), releases the step before it
   * and moves the states to the step's outputs, now at {@code nextPosition}'s input.
   */
  private <P extends Serializable> BlockPartials<P> finish(
      JavaRDD<CalibrationSteps.StepOutput<P>> outputs, JavaPairRDD<String, ChunkPartial<P>> nodesByKey, List<JavaRDD<?>> stepCached,
      BlockVisitor<P> visitor, int nextPosition) {
    // Materialized here, so the step before it can be released and the partials' shuffle reads
    // the cache; small partials come back with this job and are folded on the driver.
    BlockPartials<P> partials;
    if (visitor.foldOnDriver()) {
      // The reduce side's sort and fold, on the driver.
      List<Tuple2<Tuple2<String, Integer>, ChunkPartial<P>>> nodes = new ArrayList<>(nodesByKey
          .mapToPair(new CalibrationSteps.ByFirstChunk<>())
          .collect());
      Comparator<Tuple2<String, Integer>> order = new CalibrationSteps.KeyThenFirstChunk();
      nodes.sort((a, b) -> order.compare(a._1(), b._1()));
      Map<String, P> folded = new LinkedHashMap<>();
      new CalibrationSteps.FoldSorted<P>(visitor, chunks).call(nodes.iterator()).forEachRemaining(result -> folded.put(result._1(), result._2()));
      partials = BlockPartials.onDriver(folded);
    } else {
      outputs.count();
      partials = BlockPartials.distributed(nodesByKey
          .mapToPair(new CalibrationSteps.ByFirstChunk<>())
          .repartitionAndSortWithinPartitions(new CalibrationSteps.KeyPartitioner(partitions), new CalibrationSteps.KeyThenFirstChunk())
          .mapPartitionsToPair(new CalibrationSteps.FoldSorted<>(visitor, chunks), true));
    }
    cached.forEach(rdd -> rdd.unpersist(false));
    cached = stepCached;
    states = outputs.map(new CalibrationSteps.StatesOf<>());
    position = nextPosition;
    return partials;
  }

  /**
   * The cached states at {@link #position}'s input, one {@link SampleChunk} per chunk, in the
   * pass's fixed partitioning: valid until the next step, which releases them (a job that needs
   * the states themselves, such as shrink's depth scores, reads them between steps).
   */
  public JavaRDD<SampleChunk> states() {
    return states;
  }

  /** The blocks this pass runs expert-parallel. */
  public ExpertSharding sharding() {
    return sharding;
  }

  /** Releases the cached states and this run's decoded blocks held by the driver's JVM. */
  @Override
  public void close() {
    cached.forEach(rdd -> rdd.unpersist(false));
    BlockWeightsCache.evictRun(context.staging());
  }
}
