package dev.sparkprune.jobs.prune.calibration;

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
import org.apache.spark.api.java.function.PairFlatMapFunction;
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
      context.faultPoint("embed");
      try (DecoderModel model = context.openModel(context.backend().backend())) {
        return new SampleChunk(chunk._1(), chunk._2(), model.embed(chunk._2()));
      }
    }
  }

  /** A chunk's states after a step and the visitor's partials of that chunk. */
  static final class StepOutput<P extends Serializable> implements Serializable {
    private static final long serialVersionUID = 1L;
    final SampleChunk states;
    final LinkedHashMap<String, P> partials;

    StepOutput(SampleChunk states, LinkedHashMap<String, P> partials) {
      this.states = states;
      this.partials = partials;
    }
  }

  /**
   * One pass over a partition's cached chunks: optionally advances each chunk through the
   * edited (pruned) block {@code advanceBlock}, then runs the dense block {@code collectBlock}
   * with the visitor's hooks. The chunk's states move on to the dense block's output when
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
    private final BlockVisitor<P> visitor;
    private final boolean keepDenseOutput;

    Step(JobContext context, int advanceBlock, BlockEdit edit, int collectBlock, BlockVisitor<P> visitor, boolean keepDenseOutput) {
      this.context = context;
      this.advanceBlock = advanceBlock;
      this.edit = Objects.requireNonNull(edit, "edit is null");
      this.collectBlock = collectBlock;
      this.visitor = Objects.requireNonNull(visitor, "visitor is null");
      this.keepDenseOutput = keepDenseOutput;
    }

    @Override
    public Iterator<StepOutput<P>> call(Iterator<SampleChunk> chunks) throws IOException {
      List<StepOutput<P>> out = new ArrayList<>();
      if (!chunks.hasNext()) {
        return out.iterator();
      }
      ComputeBackend backend = context.backend().backend();
      try (DecoderModel model = context.openModel(backend)) {
        BlockWeights advanced = advanceBlock == NO_ADVANCE ? null : edited(model, advanceBlock);
        BlockWeights dense = dense(model, collectBlock);
        while (chunks.hasNext()) {
          SampleChunk chunk = chunks.next();
          HiddenStates input = advanced == null ? chunk.hidden() : model.runBlock(advanced, chunk.hidden(), InputHook.NONE);
          ChunkVisit<P> visit = visitor.start(collectBlock, chunk.index(), backend);
          HiddenStates output = model.runBlock(dense, input, visit);
          LinkedHashMap<String, P> partials = new LinkedHashMap<>(visit.finish(input, output));
          out.add(new StepOutput<>(chunk.with(keepDenseOutput ? output : input), partials));
        }
      }
      // After the work: a retried attempt must redo all of it.
      context.faultPoint(advanceBlock == NO_ADVANCE ? "statistics" : "advance");
      return out.iterator();
    }

    private BlockWeights dense(DecoderModel model, int block) throws IOException {
      return BlockWeightsCache.get(BlockWeightsCache.key(context.staging(), block, BlockEdit.NONE.cacheKey()), () -> model.loadBlock(block));
    }

    private BlockWeights edited(DecoderModel model, int block) throws IOException {
      BlockWeights dense = dense(model, block);
      return BlockWeightsCache.get(BlockWeightsCache.key(context.staging(), block, edit.cacheKey()), () -> edit.apply(context, dense));
    }
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
      List<Tuple2<String, ChunkPartial<P>>> out = new ArrayList<>();
      for (Map.Entry<String, P> entry : step.partials.entrySet()) {
        out.add(new Tuple2<>(entry.getKey(), new ChunkPartial<>(step.states.index(), entry.getValue())));
      }
      return out.iterator();
    }
  }

  /** Folds a key's chunk partials in chunk order with the visitor's merge. */
  static final class FoldInChunkOrder<P extends Serializable> implements Function<Iterable<ChunkPartial<P>>, P> {
    private static final long serialVersionUID = 1L;
    private final BlockVisitor<P> visitor;

    FoldInChunkOrder(BlockVisitor<P> visitor) {
      this.visitor = visitor;
    }

    @Override
    public P call(Iterable<ChunkPartial<P>> partials) {
      return ChunkPartial.foldInOrder(partials, visitor);
    }
  }
}
