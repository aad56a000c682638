package dev.sparkprune.jobs.calibration;

import dev.sparkprune.jobs.plan.ExpertGroup;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import java.io.Serializable;
import java.util.List;
import java.util.Locale;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * One expert-parallel step of the {@link CalibrationPass} on a MoE block too large for one task
 * (see {@link ExpertSharding}): no task holds more than one group of the block's routed experts.
 *
 * <ol>
 *   <li><b>attention</b>, one task per calibration partition over its cached chunks: attention
 *       (with the visitor's hooks) and the router, from the block without its routed experts;
 *       the chunks' residual streams and routing stay cached;
 *   <li><b>experts</b>, one task per expert group, fed by a shuffle keyed by group of each chunk's
 *       rows routed to the group's experts (every row with --moe-calibration all): each expert,
 *       read alone, runs on its rows of every chunk in chunk order, with a fresh visit per chunk,
 *       so its statistics are the very calls the whole block makes, folded over the same
 *       pairwise tree of the chunks; outputs and statistics are kept on disk;
 *   <li><b>combine</b>, one task per calibration partition: the outputs, shuffled back to the
 *       partition caching their chunk and sorted by (chunk, expert), summed in ascending expert
 *       order ({@code ExpertCombiner}), the shared expert added with the visitor's hooks, the
 *       residual added; the visitor finishes with the block's input and output.
 * </ol>
 *
 * Every expert sees the rows and computes the products the unsharded block does, in the same
 * shapes, and every sum runs in the same order, so statistics, saliency and the block's output
 * are the same bits on any partitioning and any grouping.
 */
final class ShardedBlock {
  private ShardedBlock() {}

  /** A step's states and partial nodes, and the RDDs it cached (released with the next step). */
  record Run<P extends Serializable>(
      JavaRDD<CalibrationSteps.StepOutput<P>> outputs, JavaPairRDD<String, ChunkPartial<P>> partials, List<JavaRDD<?>> cached) {}

  static <P extends Serializable> Run<P> run(
      JobStages stages, JavaRDD<SampleChunk> states, int[] partitionOfChunk, int block, int blocks, BlockEdit edit, BlockVisitor<P> visitor,
      boolean keepOutput, List<ExpertGroup> groups) {
    JobContext context = stages.context();
    int chunks = partitionOfChunk.length;
    int partitions = states.getNumPartitions();
    stages.describe(String.format(Locale.ROOT, "block %d/%d: attention and router (experts apart)", block + 1, blocks));
    JavaRDD<AttendedChunk<P>> attended = stages.onGpus(states.mapPartitions(new ShardedBlockSteps.Attend<>(context, block, edit, visitor, chunks), true))
        .persist(StorageLevel.MEMORY_AND_DISK());
    attended.count();

    stages.describe(String.format(Locale.ROOT, "block %d/%d: %d expert groups", block + 1, blocks, groups.size()));
    JavaRDD<ExpertResult<P>> results = stages.onGpus(attended
            .mapPartitionsToPair(new ShardedBlockSteps.Dispatch<>(context, block, edit, groups, visitor.expertInputs()))
            .partitionBy(new ShardedBlockSteps.GroupPartitioner(groups.size()))
            .mapPartitions(new ShardedBlockSteps.ExpertTask<>(context, block, edit, visitor, chunks, groups), true))
        // On disk: the outputs are as large as the routed rows, and two stages read them.
        .persist(StorageLevel.DISK_ONLY());
    results.count();

    stages.describe(String.format(Locale.ROOT, "block %d/%d: combine experts", block + 1, blocks));
    JavaPairRDD<Tuple2<Integer, Integer>, float[]> sorted = results.flatMapToPair(new ShardedBlockSteps.OutputsByChunk<>())
        .repartitionAndSortWithinPartitions(new ShardedBlockSteps.ChunkPartitioner(partitionOfChunk, partitions), new ShardedBlockSteps.ChunkThenExpert());
    JavaRDD<CalibrationSteps.StepOutput<P>> outputs = stages.onGpus(attended.zipPartitions(sorted,
            new ShardedBlockSteps.Combine<>(context, block, edit, visitor, chunks, keepOutput)))
        .persist(StorageLevel.MEMORY_AND_DISK());
    JavaPairRDD<String, ChunkPartial<P>> partials = outputs.flatMapToPair(new CalibrationSteps.PartialsOf<>())
        .union(results.flatMapToPair(new ShardedBlockSteps.PartialsOfExperts<>()));
    return new Run<>(outputs, partials, List.of(attended, results, outputs));
  }
}
