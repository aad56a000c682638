package dev.sparkprune.jobs.gradient;

import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.calibration.PairwiseFold;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.scoring.grad.GradientStatistics;
import dev.sparkprune.tensorio.arch.Block;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import scala.Tuple2;

/**
 * The distributed gradient pass: per-sample gradients of the dense model's causal-LM loss, on
 * the executors, over the calibration source's fixed chunks (the same samples and chunks as the
 * calibration pass), written as a gradient set of every prunable linear:
 *
 * <ol>
 *   <li><b>backward</b>, one task per partition of chunks: each chunk's samples through
 *       {@code GradientPass} (checkpointed forward, backward block by block), every sample's dW
 *       added into the chunk's per-linear statistics in sample order, each block's statistics
 *       written as the chunk's partials once the block is done;
 *   <li><b>fold</b>, one task per block: each linear's chunk partials folded over the fixed
 *       pairwise tree of the chunks ({@link PairwiseFold}), written as the set's file.
 * </ol>
 *
 * Chunks are fixed by --nsamples and every sample runs alone, so a chunk's partial is the same
 * on any cluster, and the fold's tree depends only on the number of chunks: the set's bytes are
 * the same on any partitioning. Only the per-(block, chunk) removal changes (doubles) reach the
 * driver; nothing weight-sized passes through it.
 */
public final class GradientStage {
  private GradientStage() {}

  /**
   * Computes the gradient set of every prunable linear of {@code layout} into {@code directory}
   * (its {@link GradientManifest#FILE} last) and returns its manifest.
   */
  public static GradientManifest compute(JobStages stages, CalibrationSource calibration, ModelLayout layout, String directory,
      String modelFingerprint, ProgressLog log) throws IOException {
    HadoopFileIO io = stages.context().io();
    List<Tuple2<Integer, int[][]>> chunks = calibration.chunks();
    int partitions = calibration.partitions(stages.jsc());
    int blocks = layout.blocks().size();
    Set<String> tensors = new TreeSet<>();
    layout.linears().forEach(linear -> tensors.add(linear.tensorName()));
    log.line("gradients: backward pass of %d samples x %d tokens in %d chunks on %d partitions", calibration.size(),
        calibration.settings().seqlen(), chunks.size(), partitions);
    long start = System.nanoTime();

    stages.describe("gradients: backward");
    List<Tuple2<Integer, double[]>> removal = stages.onGpus(stages.jsc().parallelize(chunks, partitions)
        .mapPartitions(new GradientTasks.Backward(stages.context(), directory, tensors, blocks))).collect();
    double backward = (System.nanoTime() - start) / 1e9;

    stages.describe("gradients: fold");
    List<List<Linear>> perBlock = new ArrayList<>();
    for (Block block : layout.blocks()) {
      // Mutable lists: Kryo rebuilds a parallelized collection by adding to it.
      perBlock.add(new ArrayList<>(block.linears()));
    }
    long bytes = stages.jsc().parallelize(perBlock, Math.max(1, Math.min(blocks, stages.jsc().defaultParallelism() * 2)))
        .map(new GradientTasks.Fold(stages.context(), directory, chunks.size()))
        .reduce(Long::sum);
    GradientFiles.deleteRecursively(io, GradientFiles.partials(io, directory));

    GradientManifest manifest = new GradientManifest(modelFingerprint, GradientManifest.LOSS, GradientStatistics.SCALE,
        calibration.settings(), calibration.fingerprint(), calibration.size(), new ArrayList<>(tensors),
        blockImportance(removal, chunks.size(), blocks, calibration.size()));
    manifest.write(io, directory);
    log.line("gradients: %d linears, %.1f MB of statistics (backward %.1f s, fold %.1f s)", tensors.size(), bytes / 1e6, backward,
        (System.nanoTime() - start) / 1e9 - backward);
    return manifest;
  }

  /** Each block's |mean dLoss/dOutput . (input - output)|: the chunks' sums folded over the same pairwise tree. */
  static double[] blockImportance(List<Tuple2<Integer, double[]>> perChunk, int chunks, int blocks, long samples) {
    List<Tuple2<Integer, double[]>> sorted = new ArrayList<>(perChunk);
    sorted.sort((a, b) -> Integer.compare(a._1(), b._1()));
    PairwiseFold<double[]> fold = new PairwiseFold<>(chunks, (earlier, later) -> {
      double[] sum = earlier.clone();
      for (int b = 0; b < sum.length; b++) {
        sum[b] += later[b];
      }
      return sum;
    });
    sorted.forEach(chunk -> fold.addChunk(chunk._1(), chunk._2()));
    double[] total = fold.result();
    double[] importance = new double[blocks];
    for (int b = 0; b < blocks; b++) {
      importance[b] = Math.abs(total[b] / samples);
    }
    return importance;
  }
}
