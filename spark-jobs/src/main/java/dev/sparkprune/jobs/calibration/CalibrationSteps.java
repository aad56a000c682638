package dev.sparkprune.jobs.calibration;

import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.api.java.function.PairFlatMapFunction;
import org.apache.spark.api.java.function.PairFunction;
import scala.Tuple2;

/**
 * The executor side of the {@link CalibrationPass}: static function classes holding the job
 * context and resolved settings only. A chunk's samples run through a block as one batch.
 */
final class CalibrationSteps {
  private CalibrationSteps() {}

  /** Token windows of a chunk to its embedded hidden states, as one batch. */
  static final class EmbedChunk implements Function<Tuple2<Integer, int[][]>, SampleChunk> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;

    EmbedChunk(JobContext context) {
      this.context = context;
    }

    @Override
    public SampleChunk call(Tuple2<Integer, int[][]> chunk) throws IOException {
      context.probe("embed");
      try (DecoderModel model = context.openModel(context.backend().backend())) {
        return new SampleChunk(chunk._1(), chunk._2(), model.embed(chunk._2()));
      }
    }
  }

  /**
   * A chunk's states after a step; the last chunk of a partition also carries the partition's
   * partials: per key, the complete subtrees of its chunks' {@link PairwiseFold}.
   */
  static final class StepOutput<P extends Serializable> implements Serializable {
    private static final long serialVersionUID = 2L;
    final SampleChunk states;
    final List<Tuple2<String, ChunkPartial<P>>> partials;

    StepOutput(SampleChunk states, List<Tuple2<String, ChunkPartial<P>>> partials) {
      this.states = states;
      this.partials = partials;
    }
  }

  /**
   * One pass over a partition's cached chunks: optionally advances each chunk through the
   * edited (pruned) block {@code advanceBlock}, then runs the block {@code collectBlock} (dense,
   * or as {@code collectEdit} changed it) with the visitor's hooks. The chunk's states move on to the dense block's output when
   * {@code keepDenseOutput} (dense passes), else stay at {@code collectBlock}'s input (the
   * sequential mode advances them through the pruned block in the next step).
   */
  static final class Step<P extends Serializable> implements FlatMapFunction<Iterator<SampleChunk>, StepOutput<P>> {
    private static final long serialVersionUID = 1L;
    /** No advance before collecting: the states are already at the collected block. */
    static final int NO_ADVANCE = -1;

    private final JobContext context;
    private final int advanceBlock;
    private final BlockEdit edit;
    private final int collectBlock;
    private final BlockEdit collectEdit;
    private final BlockVisitor<P> visitor;
    private final boolean keepDenseOutput;
    private final int chunks;

    Step(JobContext context, int advanceBlock, BlockEdit edit, int collectBlock, BlockVisitor<P> visitor, boolean keepDenseOutput,
        int chunks) {
      this(context, advanceBlock, edit, collectBlock, BlockEdit.NONE, visitor, keepDenseOutput, chunks);
    }

    Step(JobContext context, int advanceBlock, BlockEdit edit, int collectBlock, BlockEdit collectEdit, BlockVisitor<P> visitor,
        boolean keepDenseOutput, int chunks) {
      this.context = context;
      this.advanceBlock = advanceBlock;
      this.edit = Objects.requireNonNull(edit, "edit is null");
      this.collectBlock = collectBlock;
      this.collectEdit = Objects.requireNonNull(collectEdit, "collectEdit is null");
      this.visitor = Objects.requireNonNull(visitor, "visitor is null");
      this.keepDenseOutput = keepDenseOutput;
      this.chunks = chunks;
    }

    @Override
    public Iterator<StepOutput<P>> call(Iterator<SampleChunk> partition) throws IOException {
      List<StepOutput<P>> out = new ArrayList<>();
      if (!partition.hasNext()) {
        return out.iterator();
      }
      ComputeBackend backend = context.backend().backend();
      // Per key, this partition's chunks folded as they finish: a few partials live, not one per chunk.
      Map<String, PairwiseFold<P>> folds = new LinkedHashMap<>();
      try (DecoderModel model = context.openModel(backend)) {
        BlockWeights advanced = advanceBlock == NO_ADVANCE ? null : edited(model, advanceBlock, edit);
        BlockWeights dense = collectEdit == BlockEdit.NONE ? dense(model, collectBlock) : edited(model, collectBlock, collectEdit);
        while (partition.hasNext()) {
          SampleChunk chunk = partition.next();
          HiddenStates input = advanced == null ? chunk.hidden() : model.runBlock(advanced, chunk.hidden(), InputHook.NONE);
          if (advanced != null) {
            checkFinite(advanceBlock, chunk, chunk.hidden(), input, advanced);
          }
          ChunkVisit<P> visit = visitor.start(collectBlock, chunk.index(), backend);
          HiddenStates output = model.runBlock(dense, input, visit);
          checkFinite(collectBlock, chunk, input, output, dense);
          visit.finish(input, output).forEach(
              (key, partial) -> folds.computeIfAbsent(key, k -> new PairwiseFold<>(chunks, visitor)).addChunk(chunk.index(), partial));
          out.add(new StepOutput<>(chunk.with(keepDenseOutput ? output : input), List.of()));
        }
      }
      List<Tuple2<String, ChunkPartial<P>>> partials = new ArrayList<>();
      folds.forEach((key, fold) -> fold.nodes().forEach(node -> partials.add(new Tuple2<>(key, node))));
      StepOutput<P> last = out.remove(out.size() - 1);
      out.add(new StepOutput<>(last.states, partials));
      // After the work: a retried attempt must redo all of it.
      context.probe(advanceBlock == NO_ADVANCE ? "statistics" : "advance");
      return out.iterator();
    }

    private BlockWeights dense(DecoderModel model, int block) throws IOException {
      return BlockWeightsCache.get(BlockWeightsCache.key(context.staging(), block, BlockEdit.NONE.cacheKey()), () -> model.loadBlock(block));
    }

    private BlockWeights edited(DecoderModel model, int block, BlockEdit blockEdit) throws IOException {
      BlockWeights dense = dense(model, block);
      return BlockWeightsCache.get(BlockWeightsCache.key(context.staging(), block, blockEdit.cacheKey()), () -> blockEdit.apply(context, dense));
    }
  }

  /** Each cached chunk's index with its partition: where a step must send a chunk's data back. */
  static final class ChunkPlaces implements Function2<Integer, Iterator<SampleChunk>, Iterator<Tuple2<Integer, Integer>>> {
    private static final long serialVersionUID = 1L;

    @Override
    public Iterator<Tuple2<Integer, Integer>> call(Integer partition, Iterator<SampleChunk> chunks) {
      List<Tuple2<Integer, Integer>> out = new ArrayList<>();
      chunks.forEachRemaining(chunk -> out.add(new Tuple2<>(chunk.index(), partition)));
      return out.iterator();
    }
  }

  /**
   * Refuses a block whose output holds NaN or infinity, naming that block instead of letting a
   * later layer's statistics report a NaN activation: finite inputs turned non-finite mean values
   * beyond float32's range inside the block (a weight or an input near 3e38), the largest of which
   * the message names. Non-finite inputs of the first block come from the embedding.
   */
  static void checkFinite(int block, SampleChunk chunk, HiddenStates input, HiddenStates output, BlockWeights weights) {
    int bad = output.firstNonFinite();
    if (bad < 0) {
      return;
    }
    int badInput = input.firstNonFinite();
    int width = output.width();
    int length = output.length();
    int at = badInput >= 0 ? badInput : bad;
    float value = badInput >= 0 ? input.values()[badInput] : output.values()[bad];
    String where = String.format(java.util.Locale.ROOT, "sample %d of chunk %d, token %d", at / width / length, chunk.index(), at / width % length);
    if (badInput >= 0) {
      throw new dev.sparkprune.tensorio.ValidationException(String.format(java.util.Locale.ROOT,
          "Cannot calibrate block %d: its input holds %s (%s), from the embedding or an earlier block; check the model's weights",
          block, value, where));
    }
    String largest = weights.largestMagnitude().map(entry -> String.format(java.util.Locale.ROOT, "%s in %s", entry.getValue(), entry.getKey()))
        .orElse("none");
    throw new dev.sparkprune.tensorio.ValidationException(String.format(java.util.Locale.ROOT,
        "Cannot calibrate block %d: its output holds %s (%s) although its input is finite: values beyond float32's range inside the"
            + " block; largest |weight| %s, largest |input| %s; check those weights (and norm epsilons in config.json)",
        block, value, where, largest, input.largestMagnitude()));
  }

  static final class StatesOf<P extends Serializable> implements Function<StepOutput<P>, SampleChunk> {
    private static final long serialVersionUID = 1L;

    @Override
    public SampleChunk call(StepOutput<P> step) {
      return step.states;
    }
  }

  static final class PartialsOf<P extends Serializable> implements PairFlatMapFunction<StepOutput<P>, String, ChunkPartial<P>> {
    private static final long serialVersionUID = 1L;

    @Override
    public Iterator<Tuple2<String, ChunkPartial<P>>> call(StepOutput<P> step) {
      return step.partials.iterator();
    }
  }

  /** A partial's shuffle key: its statistics key and first chunk, sorted in that order. */
  static final class ByFirstChunk<P extends Serializable>
      implements PairFunction<Tuple2<String, ChunkPartial<P>>, Tuple2<String, Integer>, ChunkPartial<P>> {
    private static final long serialVersionUID = 1L;

    @Override
    public Tuple2<Tuple2<String, Integer>, ChunkPartial<P>> call(Tuple2<String, ChunkPartial<P>> partial) {
      return new Tuple2<>(new Tuple2<>(partial._1(), partial._2().firstChunk()), partial._2());
    }
  }

  /** Partitions (key, first chunk) by key only, so one reducer sees all of a key's partials. */
  static final class KeyPartitioner extends org.apache.spark.Partitioner {
    private static final long serialVersionUID = 1L;
    private final int partitions;

    KeyPartitioner(int partitions) {
      this.partitions = partitions;
    }

    @Override
    public int numPartitions() {
      return partitions;
    }

    @Override
    @SuppressWarnings("unchecked")
    public int getPartition(Object key) {
      return Math.floorMod(((Tuple2<String, Integer>) key)._1().hashCode(), partitions);
    }
  }

  /** Orders (key, first chunk) by key, then first chunk: the order a key's partials fold in. */
  static final class KeyThenFirstChunk implements java.util.Comparator<Tuple2<String, Integer>>, Serializable {
    private static final long serialVersionUID = 1L;

    @Override
    public int compare(Tuple2<String, Integer> a, Tuple2<String, Integer> b) {
      int byKey = a._1().compareTo(b._1());
      return byKey != 0 ? byKey : Integer.compare(a._2(), b._2());
    }
  }

  /**
   * Partials sorted by key, then first chunk, folded key by key as they stream past (a few
   * partials in memory, never all of a key's): a reduce partition, or all of a step's small
   * partials on the driver.
   */
  static final class FoldSorted<P extends Serializable>
      implements PairFlatMapFunction<Iterator<Tuple2<Tuple2<String, Integer>, ChunkPartial<P>>>, String, P> {
    private static final long serialVersionUID = 1L;
    private final BlockVisitor<P> visitor;
    private final int chunks;

    FoldSorted(BlockVisitor<P> visitor, int chunks) {
      this.visitor = visitor;
      this.chunks = chunks;
    }

    @Override
    public Iterator<Tuple2<String, P>> call(Iterator<Tuple2<Tuple2<String, Integer>, ChunkPartial<P>>> sorted) {
      List<Tuple2<String, P>> out = new ArrayList<>();
      String key = null;
      PairwiseFold<P> fold = null;
      while (sorted.hasNext()) {
        Tuple2<Tuple2<String, Integer>, ChunkPartial<P>> next = sorted.next();
        if (!next._1()._1().equals(key)) {
          if (fold != null) {
            out.add(new Tuple2<>(key, fold.result()));
          }
          key = next._1()._1();
          fold = new PairwiseFold<>(chunks, visitor);
        }
        fold.add(next._2());
      }
      if (fold != null) {
        out.add(new Tuple2<>(key, fold.result()));
      }
      return out.iterator();
    }
  }
}
