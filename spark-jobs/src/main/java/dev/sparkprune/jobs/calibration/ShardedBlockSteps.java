package dev.sparkprune.jobs.calibration;

import dev.sparkprune.jobs.plan.ExpertGroup;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.ExpertCombiner;
import dev.sparkprune.scoring.model.ExpertRouting;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.MoeBlock;
import dev.sparkprune.scoring.model.MoeInput;
import dev.sparkprune.scoring.model.RoutedExpert;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.TreeMap;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.api.java.function.FlatMapFunction2;
import org.apache.spark.api.java.function.PairFlatMapFunction;
import scala.Tuple2;

/**
 * The executor side of an expert-parallel block ({@link ShardedBlock}): static function classes
 * holding the job context and resolved settings only.
 *
 * <ol>
 *   <li>{@link Attend}: per calibration partition, each chunk through attention and the router,
 *       from the block's weights without its routed experts; the states stay cached.
 *   <li>{@link Dispatch}: each chunk's routed rows, per expert group, for the shuffle by group.
 *   <li>{@link ExpertTask}: per group, its experts read one at a time, each run on its rows of
 *       every chunk in chunk order with the visitor's hooks; outputs and folded statistics out.
 *   <li>{@link Combine}: per calibration partition, the outputs sorted by (chunk, expert) summed
 *       in ascending expert order (the visit sees each, as the whole block's hook does: REAP's
 *       saliency), the shared expert added, the residual added.
 * </ol>
 */
final class ShardedBlockSteps {
  private ShardedBlockSteps() {}

  /** The block's weights without routed experts, as the edit left them, shared by the executor's tasks. */
  static BlockWeights attentionWeights(JobContext context, DecoderModel model, int block, BlockEdit edit) throws IOException {
    BlockWeights dense = BlockWeightsCache.get(
        BlockWeightsCache.key(context.staging(), block, "experts-apart:" + BlockEdit.NONE.cacheKey()), () -> model.loadBlockWithoutExperts(block));
    return BlockWeightsCache.get(BlockWeightsCache.key(context.staging(), block, "experts-apart:" + edit.cacheKey()), () -> edit.apply(context, dense));
  }

  /** Stage 1: attention and routing of a partition's chunks, with the visitor on attention's linears. */
  static final class Attend<P extends Serializable> implements FlatMapFunction<Iterator<SampleChunk>, AttendedChunk<P>> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final int block;
    private final BlockEdit edit;
    private final BlockVisitor<P> visitor;
    private final int chunks;

    Attend(JobContext context, int block, BlockEdit edit, BlockVisitor<P> visitor, int chunks) {
      this.context = context;
      this.block = block;
      this.edit = Objects.requireNonNull(edit, "edit is null");
      this.visitor = Objects.requireNonNull(visitor, "visitor is null");
      this.chunks = chunks;
    }

    @Override
    public Iterator<AttendedChunk<P>> call(Iterator<SampleChunk> partition) throws IOException {
      List<AttendedChunk<P>> out = new ArrayList<>();
      if (!partition.hasNext()) {
        return out.iterator();
      }
      ComputeBackend backend = context.backend().backend();
      Map<String, PairwiseFold<P>> folds = new LinkedHashMap<>();
      try (DecoderModel model = context.openModel(backend)) {
        BlockWeights weights = attentionWeights(context, model, block, edit);
        MoeBlock moe = model.moe(block).orElseThrow();
        while (partition.hasNext()) {
          SampleChunk chunk = partition.next();
          ChunkVisit<P> visit = visitor.start(block, chunk.index(), backend);
          MoeInput moeInput = model.attend(weights, chunk.hidden(), visit);
          ExpertRouting routing = moe.route(weights, moeInput.x(), moeInput.tokens());
          visit.finishPart().forEach(
              (key, partial) -> folds.computeIfAbsent(key, k -> new PairwiseFold<>(chunks, visitor)).addChunk(chunk.index(), partial));
          out.add(new AttendedChunk<>(chunk, moeInput.residual(), routing.choices(), routing.choiceWeights(), List.of()));
        }
      }
      AttendedChunk<P> last = out.remove(out.size() - 1);
      out.add(last.withPartials(nodes(folds)));
      context.probe("attention");
      return out.iterator();
    }
  }

  /** Stage 1's shuffle: per chunk and expert group, the group's routed rows (or every row). */
  static final class Dispatch<P extends Serializable> implements PairFlatMapFunction<Iterator<AttendedChunk<P>>, Integer, ExpertRows> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final int block;
    private final BlockEdit edit;
    private final List<ExpertGroup> groups;
    private final boolean allTokens;

    Dispatch(JobContext context, int block, BlockEdit edit, List<ExpertGroup> groups, InputHook.ExpertInputs inputs) {
      this.context = context;
      this.block = block;
      this.edit = Objects.requireNonNull(edit, "edit is null");
      this.groups = List.copyOf(groups);
      this.allTokens = inputs == InputHook.ExpertInputs.ALL;
    }

    @Override
    public Iterator<Tuple2<Integer, ExpertRows>> call(Iterator<AttendedChunk<P>> partition) throws IOException {
      List<Tuple2<Integer, ExpertRows>> out = new ArrayList<>();
      if (!partition.hasNext()) {
        return out.iterator();
      }
      try (DecoderModel model = context.openModel(context.backend().backend())) {
        BlockWeights weights = attentionWeights(context, model, block, edit);
        MoeBlock moe = model.moe(block).orElseThrow();
        while (partition.hasNext()) {
          AttendedChunk<P> attended = partition.next();
          // The post-attention norm again: the same function of the same residual, so the same x.
          float[] x = model.moeInput(weights, attended.residual).x();
          int width = attended.residual.width();
          ExpertRouting routing = ExpertRouting.of(moe.settings().experts(), moe.settings().topK(), attended.chosen, attended.weights);
          for (ExpertGroup group : groups) {
            int[][] rows = new int[group.size()][];
            float[][] weights2 = new float[group.size()][];
            int total = 0;
            for (int e = group.first(); e < group.end(); e++) {
              rows[e - group.first()] = routing.rows(e);
              weights2[e - group.first()] = routing.weights(e);
              total += rows[e - group.first()].length;
            }
            float[] shipped;
            if (allTokens) {
              shipped = x;
            } else {
              shipped = new float[total * width];
              int offset = 0;
              for (int[] expertRows : rows) {
                float[] gathered = ExpertRouting.gather(x, expertRows, width);
                System.arraycopy(gathered, 0, shipped, offset, gathered.length);
                offset += gathered.length;
              }
            }
            out.add(new Tuple2<>(group.index(), new ExpertRows(
                attended.input.index(), attended.residual.sequences(), attended.residual.tokens(), width, rows, weights2, shipped, allTokens)));
          }
        }
      }
      return out.iterator();
    }
  }

  /**
   * Stage 2: one expert group. Its rows of every chunk are gathered first (they came by the
   * shuffle); then expert by expert, ascending, each read alone (and edited), run on its rows
   * chunk by chunk in chunk order with a fresh visit per chunk, exactly the calls the whole
   * block makes for that expert; its statistics fold over the chunks' pairwise tree here, and
   * its outputs and folded statistics leave before the next expert is read.
   */
  static final class ExpertTask<P extends Serializable> implements FlatMapFunction<Iterator<Tuple2<Integer, ExpertRows>>, ExpertResult<P>> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final int block;
    private final BlockEdit edit;
    private final BlockVisitor<P> visitor;
    private final int chunks;
    private final List<ExpertGroup> groups;

    ExpertTask(JobContext context, int block, BlockEdit edit, BlockVisitor<P> visitor, int chunks, List<ExpertGroup> groups) {
      this.context = context;
      this.block = block;
      this.edit = Objects.requireNonNull(edit, "edit is null");
      this.visitor = Objects.requireNonNull(visitor, "visitor is null");
      this.chunks = chunks;
      this.groups = List.copyOf(groups);
    }

    @Override
    public Iterator<ExpertResult<P>> call(Iterator<Tuple2<Integer, ExpertRows>> records) throws IOException {
      if (!records.hasNext()) {
        return java.util.Collections.emptyIterator();
      }
      TreeMap<Integer, ExpertRows> byChunk = new TreeMap<>();
      int groupIndex = -1;
      while (records.hasNext()) {
        Tuple2<Integer, ExpertRows> record = records.next();
        if (groupIndex >= 0 && record._1() != groupIndex) {
          throw new IllegalStateException("Expert task of group " + groupIndex + " got rows of group " + record._1());
        }
        groupIndex = record._1();
        if (byChunk.put(record._2().chunk, record._2()) != null) {
          throw new IllegalStateException("Expert group " + groupIndex + " got chunk " + record._2().chunk + " twice");
        }
      }
      if (byChunk.size() != chunks) {
        throw new IllegalStateException("Expert group " + groupIndex + " got " + byChunk.size() + " of " + chunks + " chunks");
      }
      ComputeBackend backend = context.backend().backend();
      DecoderModel model = context.openModel(backend);
      TaskContext task = TaskContext.get();
      if (task != null) {
        task.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) done -> closeQuietly(model));
      }
      return new ExpertByExpert<>(this, model, backend, groups.get(groupIndex), byChunk);
    }

    /** One expert's outputs over every chunk and its folded statistics. */
    List<ExpertResult<P>> runExpert(DecoderModel model, ComputeBackend backend, ExpertGroup group, int e, TreeMap<Integer, ExpertRows> byChunk)
        throws IOException {
      MoeBlock moe = model.moe(block).orElseThrow();
      RoutedExpert expert = moe.expertAlone(edit.apply(context, model.loadExpert(block, e)), e);
      List<ExpertResult<P>> out = new ArrayList<>();
      Map<String, PairwiseFold<P>> folds = new LinkedHashMap<>();
      int slot = e - group.first();
      for (ExpertRows shipped : byChunk.values()) {
        int[] rows = shipped.rows[slot];
        float[] input = shipped.allTokens ? ExpertRouting.gather(shipped.x, rows, shipped.width) : routedInput(shipped, slot);
        ChunkVisit<P> visit = visitor.start(block, shipped.chunk, backend);
        if (shipped.allTokens) {
          expert.observeAllTokens(backend.linearAlgebra(), shipped.x, shipped.tokens, shipped.sequences, visit);
        }
        float[] output = expert.apply(backend.linearAlgebra(), input, rows.length, shipped.sequences, shipped.allTokens ? InputHook.NONE : visit);
        if (rows.length > 0) {
          // The visit of the combine stage sees this output (acceptExpertOutput), as the whole block's hook does.
          out.add(ExpertResult.output(shipped.chunk, e, output));
        }
        visit.finishPart().forEach(
            (key, partial) -> folds.computeIfAbsent(key, k -> new PairwiseFold<>(chunks, visitor)).addChunk(shipped.chunk, partial));
      }
      folds.forEach((key, fold) -> fold.nodes().forEach(node -> out.add(ExpertResult.partial(key, node))));
      context.probe("experts");
      return out;
    }

    /** Expert {@code slot}'s rows within a routed shipment: after the rows of the experts before it. */
    private static float[] routedInput(ExpertRows shipped, int slot) {
      int offset = 0;
      for (int i = 0; i < slot; i++) {
        offset += shipped.rows[i].length * shipped.width;
      }
      return java.util.Arrays.copyOfRange(shipped.x, offset, offset + shipped.rows[slot].length * shipped.width);
    }
  }

  /** Produces a group's results one expert at a time, so one expert's weights and fold are live at once. */
  private static final class ExpertByExpert<P extends Serializable> implements Iterator<ExpertResult<P>> {
    private final ExpertTask<P> task;
    private final DecoderModel model;
    private final ComputeBackend backend;
    private final ExpertGroup group;
    private final TreeMap<Integer, ExpertRows> byChunk;
    private final Deque<ExpertResult<P>> ready = new ArrayDeque<>();
    private int next;

    ExpertByExpert(ExpertTask<P> task, DecoderModel model, ComputeBackend backend, ExpertGroup group, TreeMap<Integer, ExpertRows> byChunk) {
      this.task = task;
      this.model = model;
      this.backend = backend;
      this.group = group;
      this.byChunk = byChunk;
      this.next = group.first();
    }

    @Override
    public boolean hasNext() {
      while (ready.isEmpty() && next < group.end()) {
        try {
          ready.addAll(task.runExpert(model, backend, group, next++, byChunk));
        } catch (IOException e) {
          throw new UncheckedIOException("Cannot run expert " + (next - 1), e);
        }
      }
      if (ready.isEmpty()) {
        closeQuietly(model);
        return false;
      }
      return true;
    }

    @Override
    public ExpertResult<P> next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      return ready.poll();
    }
  }

  /**
   * Stage 3: per calibration partition, its chunks (cached after stage 1) zipped with their
   * experts' outputs sorted by (chunk, expert): each chunk's outputs summed in ascending expert
   * order, the shared expert added with the visitor's hooks, the residual added; the visitor
   * finishes with the block's input and output. The partition's states move on to the output
   * ({@code keepOutput}) or stay at the input.
   */
  static final class Combine<P extends Serializable> implements FlatMapFunction2<
      Iterator<AttendedChunk<P>>, Iterator<Tuple2<Tuple2<Integer, Integer>, float[]>>, CalibrationSteps.StepOutput<P>> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final int block;
    private final BlockEdit edit;
    private final BlockVisitor<P> visitor;
    private final int chunks;
    private final boolean keepOutput;

    Combine(JobContext context, int block, BlockEdit edit, BlockVisitor<P> visitor, int chunks, boolean keepOutput) {
      this.context = context;
      this.block = block;
      this.edit = Objects.requireNonNull(edit, "edit is null");
      this.visitor = Objects.requireNonNull(visitor, "visitor is null");
      this.chunks = chunks;
      this.keepOutput = keepOutput;
    }

    @Override
    public Iterator<CalibrationSteps.StepOutput<P>> call(
        Iterator<AttendedChunk<P>> partition, Iterator<Tuple2<Tuple2<Integer, Integer>, float[]>> sortedOutputs) throws IOException {
      List<CalibrationSteps.StepOutput<P>> out = new ArrayList<>();
      if (!partition.hasNext()) {
        if (sortedOutputs.hasNext()) {
          throw new IllegalStateException("Expert outputs of chunk " + sortedOutputs.next()._1()._1() + " reached a partition without chunks");
        }
        return out.iterator();
      }
      ComputeBackend backend = context.backend().backend();
      Map<String, PairwiseFold<P>> folds = new LinkedHashMap<>();
      List<Tuple2<String, ChunkPartial<P>>> attentionPartials = new ArrayList<>();
      Tuple2<Tuple2<Integer, Integer>, float[]> pending = sortedOutputs.hasNext() ? sortedOutputs.next() : null;
      try (DecoderModel model = context.openModel(backend)) {
        BlockWeights weights = attentionWeights(context, model, block, edit);
        MoeBlock moe = model.moe(block).orElseThrow();
        while (partition.hasNext()) {
          AttendedChunk<P> attended = partition.next();
          attentionPartials.addAll(attended.partials);
          int chunk = attended.input.index();
          ExpertRouting routing = ExpertRouting.of(moe.settings().experts(), moe.settings().topK(), attended.chosen, attended.weights);
          ExpertCombiner combiner = new ExpertCombiner(routing, attended.residual.width());
          if (pending != null && pending._1()._1() < chunk) {
            throw new IllegalStateException("Expert outputs of chunk " + pending._1()._1() + " came after chunk " + chunk + "'s turn");
          }
          ChunkVisit<P> visit = visitor.start(block, chunk, backend);
          while (pending != null && pending._1()._1() == chunk) {
            int expert = pending._1()._2();
            // Each routed output in ascending expert order, then the shared expert: the whole block's hook calls.
            visit.acceptExpertOutput(expert, routing.rows(expert), routing.weights(expert), pending._2(), attended.residual.width());
            combiner.add(expert, pending._2());
            pending = sortedOutputs.hasNext() ? sortedOutputs.next() : null;
          }
          MoeInput moeInput = model.moeInput(weights, attended.residual);
          float[] moeOutput = combiner.result();
          moe.addShared(weights, moeInput.x(), moeInput.tokens(), moeInput.sequences(), visit, moeOutput);
          HiddenStates output = moeInput.finish(moeOutput);
          HiddenStates input = attended.input.hidden();
          visit.finish(input, output).forEach(
              (key, partial) -> folds.computeIfAbsent(key, k -> new PairwiseFold<>(chunks, visitor)).addChunk(chunk, partial));
          out.add(new CalibrationSteps.StepOutput<>(attended.input.with(keepOutput ? output : input), List.of()));
        }
      }
      if (pending != null) {
        throw new IllegalStateException("Expert outputs of chunk " + pending._1()._1() + " have no chunk in their partition");
      }
      List<Tuple2<String, ChunkPartial<P>>> partials = new ArrayList<>(attentionPartials);
      partials.addAll(nodes(folds));
      CalibrationSteps.StepOutput<P> last = out.remove(out.size() - 1);
      out.add(new CalibrationSteps.StepOutput<>(last.states, partials));
      context.probe("combine");
      return out.iterator();
    }
  }

  /** An expert output's shuffle record: keyed by (chunk, expert), what stage 3 sorts by. */
  static final class OutputsByChunk<P extends Serializable>
      implements PairFlatMapFunction<ExpertResult<P>, Tuple2<Integer, Integer>, float[]> {
    private static final long serialVersionUID = 1L;

    @Override
    public Iterator<Tuple2<Tuple2<Integer, Integer>, float[]>> call(ExpertResult<P> result) {
      return result.isOutput()
          ? List.of(new Tuple2<>(new Tuple2<>(result.chunk, result.expert), result.output)).iterator()
          : java.util.Collections.emptyIterator();
    }
  }

  /** A folded statistics partial of an expert task, for the pass's fold by key. */
  static final class PartialsOfExperts<P extends Serializable> implements PairFlatMapFunction<ExpertResult<P>, String, ChunkPartial<P>> {
    private static final long serialVersionUID = 1L;

    @Override
    public Iterator<Tuple2<String, ChunkPartial<P>>> call(ExpertResult<P> result) {
      return result.isOutput() ? java.util.Collections.emptyIterator() : List.of(new Tuple2<>(result.key, result.partial)).iterator();
    }
  }

  /** Puts each chunk's expert outputs on the partition that caches the chunk's states. */
  static final class ChunkPartitioner extends org.apache.spark.Partitioner {
    private static final long serialVersionUID = 1L;
    private final int[] partitionOfChunk;
    private final int partitions;

    ChunkPartitioner(int[] partitionOfChunk, int partitions) {
      this.partitionOfChunk = partitionOfChunk.clone();
      this.partitions = partitions;
    }

    @Override
    public int numPartitions() {
      return partitions;
    }

    @Override
    @SuppressWarnings("unchecked")
    public int getPartition(Object key) {
      return partitionOfChunk[((Tuple2<Integer, Integer>) key)._1()];
    }
  }

  /** One partition per expert group. */
  static final class GroupPartitioner extends org.apache.spark.Partitioner {
    private static final long serialVersionUID = 1L;
    private final int groups;

    GroupPartitioner(int groups) {
      this.groups = groups;
    }

    @Override
    public int numPartitions() {
      return groups;
    }

    @Override
    public int getPartition(Object key) {
      return (Integer) key;
    }
  }

  /** Orders expert outputs by chunk, then expert: the order stage 3 sums them in. */
  static final class ChunkThenExpert implements java.util.Comparator<Tuple2<Integer, Integer>>, Serializable {
    private static final long serialVersionUID = 1L;

    @Override
    public int compare(Tuple2<Integer, Integer> a, Tuple2<Integer, Integer> b) {
      int byChunk = Integer.compare(a._1(), b._1());
      return byChunk != 0 ? byChunk : Integer.compare(a._2(), b._2());
    }
  }

  private static <P extends Serializable> List<Tuple2<String, ChunkPartial<P>>> nodes(Map<String, PairwiseFold<P>> folds) {
    List<Tuple2<String, ChunkPartial<P>>> partials = new ArrayList<>();
    folds.forEach((key, fold) -> fold.nodes().forEach(node -> partials.add(new Tuple2<>(key, node))));
    return partials;
  }

  private static void closeQuietly(DecoderModel model) {
    try {
      model.close();
    } catch (IOException e) {
      // Readers of a finished task: nothing left to lose.
    }
  }
}
