package dev.sparkprune.jobs.gradient;

import dev.sparkprune.jobs.calibration.PairwiseFold;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.grad.GradientPass;
import dev.sparkprune.scoring.grad.GradientSink;
import dev.sparkprune.scoring.grad.GradientStatistics;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.api.java.function.Function;
import scala.Tuple2;

/** The executor side of {@link GradientStage}: static function classes holding the job context and resolved settings only. */
final class GradientTasks {
  private GradientTasks() {}

  /**
   * The backward pass of a partition's chunks, one chunk at a time (so the checkpoints held are
   * one chunk's): {@link GradientPass} over the chunk's samples, each alone, adding every
   * sample's dW of each linear into the chunk's statistics in sample order; when a block's
   * backward is done its statistics are written as the chunk's partials and dropped, so a task
   * holds one block's statistics at a time. Returns each chunk's summed first-order removal
   * change per block (small).
   */
  static final class Backward implements FlatMapFunction<Iterator<Tuple2<Integer, int[][]>>, Tuple2<Integer, double[]>> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final String directory;
    private final TreeSet<String> tensors;
    private final int blocks;

    Backward(JobContext context, String directory, Set<String> tensors, int blocks) {
      this.context = Objects.requireNonNull(context, "context is null");
      this.directory = Objects.requireNonNull(directory, "directory is null");
      this.tensors = new TreeSet<>(tensors);
      this.blocks = blocks;
    }

    @Override
    public Iterator<Tuple2<Integer, double[]>> call(Iterator<Tuple2<Integer, int[][]>> partition) throws IOException {
      List<Tuple2<Integer, double[]>> out = new ArrayList<>();
      if (!partition.hasNext()) {
        return out.iterator();
      }
      HadoopFileIO io = context.io();
      try (DecoderModel model = context.openModel(context.backend().backend())) {
        GradientPass pass = GradientPass.of(model);
        while (partition.hasNext()) {
          Tuple2<Integer, int[][]> chunk = partition.next();
          ChunkStatistics sink = new ChunkStatistics(io, directory, chunk._1(), tensors, blocks);
          pass.run(chunk._2(), sink);
          sink.finish();
          out.add(new Tuple2<>(chunk._1(), sink.removal));
        }
      }
      // After the work: a retried attempt must redo all of it.
      context.probe("gradients");
      return out.iterator();
    }
  }

  /** One chunk's statistics, block by block as the pass goes: each block's written once its backward is done. */
  private static final class ChunkStatistics implements GradientSink {
    private final HadoopFileIO io;
    private final String directory;
    private final int chunk;
    private final Set<String> tensors;
    private final double[] removal;
    private final Map<String, GradientStatistics> block = new TreeMap<>();
    private int current = -1;

    ChunkStatistics(HadoopFileIO io, String directory, int chunk, Set<String> tensors, int blocks) {
      this.io = io;
      this.directory = directory;
      this.chunk = chunk;
      this.tensors = tensors;
      this.removal = new double[blocks];
    }

    @Override
    public void accept(int sequence, int blockIndex, String tensor, int rows, int cols, float[] gradient) {
      enter(blockIndex);
      if (tensors.contains(tensor)) {
        block.computeIfAbsent(tensor, name -> GradientStatistics.create(rows, cols)).add(gradient);
      }
    }

    @Override
    public void acceptBlockRemoval(int sequence, int blockIndex, double firstOrderChange) {
      enter(blockIndex);
      // In sample order within the chunk, as the statistics.
      removal[blockIndex] += firstOrderChange;
    }

    private void enter(int blockIndex) {
      if (blockIndex != current) {
        flush();
        current = blockIndex;
      }
    }

    private void flush() {
      try {
        for (Map.Entry<String, GradientStatistics> entry : block.entrySet()) {
          GradientFiles.write(io, GradientFiles.partial(io, directory, chunk, entry.getKey()), entry.getValue());
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      block.clear();
    }

    void finish() {
      flush();
    }
  }

  /**
   * Folds each linear of a block over the chunks, in the fixed pairwise tree of the calibration
   * pass ({@link PairwiseFold}: the tree depends only on the number of chunks) and writes the
   * set's file of the linear (the driver deletes the partials after the stage). Holds at most about log2(chunks) + 2 partials of
   * one linear at once. Returns the bytes written.
   */
  static final class Fold implements Function<List<Linear>, Long> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final String directory;
    private final int chunks;

    Fold(JobContext context, String directory, int chunks) {
      this.context = Objects.requireNonNull(context, "context is null");
      this.directory = Objects.requireNonNull(directory, "directory is null");
      this.chunks = chunks;
    }

    @Override
    public Long call(List<Linear> linears) throws IOException {
      HadoopFileIO io = context.io();
      long bytes = 0;
      for (Linear linear : linears) {
        PairwiseFold<GradientStatistics> fold = new PairwiseFold<>(chunks, GradientStatistics::plus);
        for (int c = 0; c < chunks; c++) {
          fold.addChunk(c, GradientFiles.read(io, GradientFiles.partial(io, directory, c, linear.tensorName()), linear.outFeatures(),
              linear.inFeatures()));
        }
        String location = GradientFiles.location(io, directory, linear.tensorName());
        GradientFiles.write(io, location, fold.result());
        bytes += io.newInputFile(location).length();
      }
      context.probe("fold");
      return bytes;
    }
  }
}
