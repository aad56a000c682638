package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.calibration.BlockVisitor;
import dev.sparkprune.jobs.calibration.ChunkPartial;
import dev.sparkprune.jobs.calibration.ChunkVisit;
import dev.sparkprune.jobs.calibration.PairwiseFold;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.repair.LinearEquations;
import dev.sparkprune.scoring.repair.LinearRefit;
import dev.sparkprune.scoring.repair.RepairSettings;
import dev.sparkprune.scoring.repair.RepairStep;
import dev.sparkprune.scoring.repair.SequentialRepair;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.SeekableInput;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.api.java.function.Function;
import scala.Tuple2;

/**
 * The executor side of the shrink job's repair ({@link ShrinkRepair}): static function classes
 * holding the job context and resolved settings only. Each calibration chunk carries two
 * streams, the dense source model's and the shrunk model's (opened from the unrepaired
 * archive the job staged); refitted tensors are staged as files and read back by the tasks
 * that need them, never shipped through the driver.
 */
final class RepairFunctions {
  private RepairFunctions() {}

  /**
   * One chunk's dense and shrunk hidden states, cached on the executors between stages (a
   * class, not a record: Spark's Kryo cannot set a record's fields).
   */
  static final class ChunkStreams implements Serializable {
    private static final long serialVersionUID = 1L;
    private final int chunk;
    private final HiddenStates dense;
    private final HiddenStates shrunk;

    ChunkStreams(int chunk, HiddenStates dense, HiddenStates shrunk) {
      this.chunk = chunk;
      this.dense = dense;
      this.shrunk = shrunk;
    }

    int chunk() {
      return chunk;
    }

    HiddenStates dense() {
      return dense;
    }

    HiddenStates shrunk() {
      return shrunk;
    }
  }

  /** A refit's figures, all that comes back to the driver (a class for Kryo, as above). */
  static final class RefitFigures implements Serializable {
    private static final long serialVersionUID = 1L;
    private final String tensor;
    private final String fit;
    private final double errorBefore;
    private final double errorAfter;
    private final long tokens;
    private final double damping;

    RefitFigures(String tensor, String fit, double errorBefore, double errorAfter, long tokens, double damping) {
      this.tensor = tensor;
      this.fit = fit;
      this.errorBefore = errorBefore;
      this.errorAfter = errorAfter;
      this.tokens = tokens;
      this.damping = damping;
    }

    String tensor() {
      return tensor;
    }

    String fit() {
      return fit;
    }

    double errorBefore() {
      return errorBefore;
    }

    double errorAfter() {
      return errorAfter;
    }

    long tokens() {
      return tokens;
    }

    double damping() {
      return damping;
    }
  }

  /** The models a task opens: the source and the unrepaired shrunk archive. */
  private static DecoderModel shrunkModel(JobContext context, String unrepaired, LinearAlgebra linalg) throws IOException {
    return Models.open(ModelArchive.open(context.io(), unrepaired), linalg);
  }

  /** Shrunk block {@code block} with the refits staged so far for it. */
  private static BlockWeights stagedBlock(JobContext context, DecoderModel shrunk, int block, String refits, Set<String> staged)
      throws IOException {
    BlockWeights weights = shrunk.loadBlock(block);
    for (Linear linear : shrunk.layout().blocks().get(block).linears()) {
      if (staged.contains(linear.tensorName())) {
        weights = weights.withTensor(linear.tensorName(), readStaged(context.io(), refits, linear.tensorName()));
      }
    }
    return weights;
  }

  /** Token windows of a chunk to both embedded streams. */
  static final class Embed implements Function<Tuple2<Integer, int[][]>, ChunkStreams> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final String unrepaired;

    Embed(JobContext context, String unrepaired) {
      this.context = context;
      this.unrepaired = unrepaired;
    }

    @Override
    public ChunkStreams call(Tuple2<Integer, int[][]> chunk) throws IOException {
      context.probe("repair");
      LinearAlgebra linalg = context.backend().backend().linearAlgebra();
      try (DecoderModel dense = context.openModel(context.backend().backend()); DecoderModel shrunk = shrunkModel(context, unrepaired, linalg)) {
        return new ChunkStreams(chunk._1(), dense.embed(chunk._2()), shrunk.embed(chunk._2()));
      }
    }
  }

  /**
   * Moves a partition's chunks on: the shrunk stream through shrunk block {@code shrunkBlock}
   * (with its staged refits; -1 for none) and the dense stream through source blocks
   * {@code denseFrom .. denseTo - 1}. Each block is loaded once per partition.
   */
  static final class Advance implements FlatMapFunction<Iterator<ChunkStreams>, ChunkStreams> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final String unrepaired;
    private final String refits;
    private final Set<String> staged;
    private final int shrunkBlock;
    private final int denseFrom;
    private final int denseTo;

    Advance(JobContext context, String unrepaired, String refits, Set<String> staged, int shrunkBlock, int denseFrom, int denseTo) {
      this.context = context;
      this.unrepaired = unrepaired;
      this.refits = refits;
      this.staged = Set.copyOf(staged);
      this.shrunkBlock = shrunkBlock;
      this.denseFrom = denseFrom;
      this.denseTo = denseTo;
    }

    @Override
    public Iterator<ChunkStreams> call(Iterator<ChunkStreams> partition) throws IOException {
      List<ChunkStreams> chunks = new ArrayList<>();
      partition.forEachRemaining(chunks::add);
      if (chunks.isEmpty()) {
        return chunks.iterator();
      }
      context.probe("repair");
      LinearAlgebra linalg = context.backend().backend().linearAlgebra();
      HiddenStates[] dense = new HiddenStates[chunks.size()];
      HiddenStates[] shrunk = new HiddenStates[chunks.size()];
      for (int c = 0; c < chunks.size(); c++) {
        dense[c] = chunks.get(c).dense();
        shrunk[c] = chunks.get(c).shrunk();
      }
      if (denseTo > denseFrom) {
        try (DecoderModel model = context.openModel(context.backend().backend())) {
          for (int b = denseFrom; b < denseTo; b++) {
            BlockWeights weights = model.loadBlock(b);
            for (int c = 0; c < dense.length; c++) {
              dense[c] = model.runBlock(weights, dense[c], InputHook.NONE);
            }
          }
        }
      }
      if (shrunkBlock >= 0) {
        try (DecoderModel model = shrunkModel(context, unrepaired, linalg)) {
          BlockWeights weights = stagedBlock(context, model, shrunkBlock, refits, staged);
          for (int c = 0; c < shrunk.length; c++) {
            shrunk[c] = model.runBlock(weights, shrunk[c], InputHook.NONE);
          }
        }
      }
      List<ChunkStreams> out = new ArrayList<>();
      for (int c = 0; c < chunks.size(); c++) {
        out.add(new ChunkStreams(chunks.get(c).chunk(), dense[c], shrunk[c]));
      }
      return out.iterator();
    }
  }

  /**
   * A partition's sums for one refit: each chunk's {@link LinearEquations} folded over the
   * fixed pairwise tree of the chunks ({@link PairwiseFold}); only the partition's complete
   * subtrees travel.
   */
  static final class Collect implements FlatMapFunction<Iterator<ChunkStreams>, ChunkPartial<LinearEquations>> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final String unrepaired;
    private final String refits;
    private final Set<String> staged;
    private final int block;
    private final boolean attention;
    private final RepairSettings settings;
    private final int chunks;

    Collect(JobContext context, String unrepaired, String refits, Set<String> staged, int block, boolean attention, RepairSettings settings,
        int chunks) {
      this.context = context;
      this.unrepaired = unrepaired;
      this.refits = refits;
      this.staged = Set.copyOf(staged);
      this.block = block;
      this.attention = attention;
      this.settings = settings;
      this.chunks = chunks;
    }

    @Override
    public Iterator<ChunkPartial<LinearEquations>> call(Iterator<ChunkStreams> partition) throws IOException {
      List<ChunkStreams> mine = new ArrayList<>();
      partition.forEachRemaining(mine::add);
      if (mine.isEmpty()) {
        return new ArrayList<ChunkPartial<LinearEquations>>().iterator();
      }
      context.probe("repair");
      mine.sort(Comparator.comparingInt(ChunkStreams::chunk));
      LinearAlgebra linalg = context.backend().backend().linearAlgebra();
      PairwiseFold<LinearEquations> fold = new PairwiseFold<>(chunks, EquationsMerge.INSTANCE);
      try (DecoderModel model = shrunkModel(context, unrepaired, linalg)) {
        BlockWeights weights = stagedBlock(context, model, block, refits, staged);
        Linear linear = SequentialRepair.refitLinear(model, block, attention);
        for (ChunkStreams chunk : mine) {
          fold.addChunk(chunk.chunk(), SequentialRepair.chunkEquations(model, weights, chunk.shrunk(), chunk.dense(), linear, settings, linalg));
        }
      }
      return fold.nodes().iterator();
    }
  }

  /**
   * Folds every partition's subtrees in chunk order, solves the refit, and stages the new
   * tensor; one task per refit, so the in² + in × out sums and the solve stay on an executor.
   */
  static final class Solve implements Function<Tuple2<Integer, Iterable<ChunkPartial<LinearEquations>>>, RefitFigures> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final String unrepaired;
    private final String refits;
    private final Set<String> staged;
    private final RepairStep step;
    private final boolean attention;
    private final RepairSettings settings;
    private final int chunks;

    Solve(JobContext context, String unrepaired, String refits, Set<String> staged, RepairStep step, boolean attention, RepairSettings settings,
        int chunks) {
      this.context = context;
      this.unrepaired = unrepaired;
      this.refits = refits;
      this.staged = Set.copyOf(staged);
      this.step = step;
      this.attention = attention;
      this.settings = settings;
      this.chunks = chunks;
    }

    @Override
    public RefitFigures call(Tuple2<Integer, Iterable<ChunkPartial<LinearEquations>>> nodes) throws IOException {
      context.probe("repair");
      List<ChunkPartial<LinearEquations>> sorted = new ArrayList<>();
      nodes._2().forEach(sorted::add);
      sorted.sort(Comparator.comparingInt(ChunkPartial::firstChunk));
      PairwiseFold<LinearEquations> fold = new PairwiseFold<>(chunks, EquationsMerge.INSTANCE);
      sorted.forEach(fold::add);
      LinearEquations equations = fold.result();
      LinearAlgebra linalg = context.backend().backend().linearAlgebra();
      try (DecoderModel model = shrunkModel(context, unrepaired, linalg)) {
        Linear linear = SequentialRepair.refitLinear(model, step.block(), attention);
        float[] current = stagedBlock(context, model, step.block(), refits, staged).tensor(linear.tensorName());
        LinearRefit.Refit refit = SequentialRepair.solve(step, attention, linear.tensorName(), current, equations, settings, linalg);
        writeStaged(context.io(), refits, linear.tensorName(), refit.weights());
        return new RefitFigures(linear.tensorName(), !attention && step.map() ? "map" : "columns", refit.errorBefore(), refit.errorAfter(),
            equations.tokens(), refit.damping());
      }
    }
  }

  /** The merge of the least-squares sums, for the pairwise fold: partials add. */
  static final class EquationsMerge implements BlockVisitor<LinearEquations> {
    static final EquationsMerge INSTANCE = new EquationsMerge();
    private static final long serialVersionUID = 1L;

    @Override
    public ChunkVisit<LinearEquations> start(int block, int chunk, ComputeBackend backend) {
      throw new UnsupportedOperationException("The repair's sums are gathered by RepairFunctions.Collect, not by the calibration pass");
    }

    @Override
    public LinearEquations merge(LinearEquations earlier, LinearEquations later) {
      return earlier.merge(later);
    }
  }

  /** A staged tensor's file: its name in the shrunk archive, then the float count and the floats (big-endian). */
  static String stagedPath(HadoopFileIO io, String refits, String tensor) {
    return io.resolve(refits, tensor + ".f32");
  }

  static void writeStaged(HadoopFileIO io, String refits, String tensor, float[] values) throws IOException {
    String path = stagedPath(io, refits, tensor);
    io.delete(path);
    try (OutputStream raw = io.newOutputFile(path).create();
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(raw, 1 << 20))) {
      out.writeInt(values.length);
      for (float value : values) {
        out.writeFloat(value);
      }
    }
  }

  static float[] readStaged(HadoopFileIO io, String refits, String tensor) throws IOException {
    String path = stagedPath(io, refits, tensor);
    long length = io.newInputFile(path).length();
    ValidationException.check(length >= 4 && (length - 4) % 4 == 0 && length - 4 <= 4L * (Integer.MAX_VALUE - 16),
        "Cannot read the staged refit %s: %d bytes is no float array", path, length);
    byte[] bytes = new byte[(int) length];
    try (SeekableInput in = io.newInputFile(path).open()) {
      in.readFully(0, bytes, 0, bytes.length);
    }
    ByteBuffer buffer = ByteBuffer.wrap(bytes);
    int count = buffer.getInt();
    ValidationException.check(4L + 4L * count == length, "Cannot read the staged refit %s: it holds %d bytes, not 4 + 4 x %d", path, length, count);
    float[] values = new float[count];
    buffer.asFloatBuffer().get(values);
    return values;
  }

  /** The staged refits as the shard writers' replacements: each writer reads only its own tensors. */
  record StagedRefits(JobContext context, String refits, Set<String> staged) implements dev.sparkprune.tensorio.shrink.TensorReplacements, Serializable {
    StagedRefits {
      staged = Set.copyOf(staged);
    }

    @Override
    public Set<String> names() {
      return staged;
    }

    @Override
    public float[] values(String target) throws IOException {
      if (!staged.contains(target)) {
        throw new IllegalArgumentException("No replacement for tensor " + target);
      }
      return readStaged(context.io(), refits, target);
    }
  }
}
