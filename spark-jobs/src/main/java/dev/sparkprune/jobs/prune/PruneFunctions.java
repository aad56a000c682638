package dev.sparkprune.jobs.prune;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.ComputeBackends;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.model.ArchiveWeights;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.arch.Expert;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.api.java.function.PairFlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import scala.Tuple2;

/**
 * The executor side of the prune job: small serializable function classes holding resolved
 * settings and broadcast handles, never the driver's job object. Each task opens the archive
 * itself (headers only) and reads just the tensors it needs with positioned reads.
 */
final class PruneFunctions {
  /** Rows of one Parquet mask record: bounds a record to 1024 rows' packed bits. */
  static final int MASK_ROWS_PER_RECORD = 1024;

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(PruneFunctions.class);

  private PruneFunctions() {}

  /** Settings every executor function shares. */
  static final class JobContext implements Serializable {
    private static final long serialVersionUID = 1L;

    final String model;
    final String staging;
    final Broadcast<SerializableConfiguration> conf;
    final int threads;
    /** Test-only: task kinds whose first attempt throws (see {@link PruneJob#INJECT_FAILURES}). */
    final Set<String> injectedFailures;

    /** Test-only: "kind@marker-path": the first task of this kind on an executor JVM to create the marker kills that JVM. */
    final String exitExecutorOnce;
    /** Test-only: the task kind at which the JVM running it halts, as kill -9 would (the driver too, in local mode). */
    final String haltJvmAt;

    JobContext(
        String model, String staging, Broadcast<SerializableConfiguration> conf, int threads, Set<String> injectedFailures,
        String exitExecutorOnce, String haltJvmAt) {
      this.model = model;
      this.staging = staging;
      this.conf = conf;
      this.threads = threads;
      this.injectedFailures = injectedFailures;
      this.exitExecutorOnce = exitExecutorOnce;
      this.haltJvmAt = haltJvmAt;
    }

    /**
     * Throws on the first attempt of a task of this kind when a test asked for it; or, once per
     * job, halts the executor running it (never the driver), as a lost machine would.
     */
    void maybeFail(String kind) {
      org.apache.spark.TaskContext task = org.apache.spark.TaskContext.get();
      if (injectedFailures.contains(kind) && task != null && task.attemptNumber() == 0) {
        throw new IllegalStateException("Injected failure of the first attempt of a " + kind + " task");
      }
      if (kind.equals(haltJvmAt)) {
        Runtime.getRuntime().halt(137);
      }
      if (!exitExecutorOnce.isEmpty() && exitExecutorOnce.startsWith(kind + "@")) {
        org.apache.spark.SparkEnv env = org.apache.spark.SparkEnv.get();
        if (env != null && !"driver".equals(env.executorId())) {
          try {
            java.nio.file.Files.createFile(java.nio.file.Path.of(exitExecutorOnce.substring(kind.length() + 1)));
          } catch (IOException e) {
            return; // Another task already took the executor down once.
          }
          Runtime.getRuntime().halt(52);
        }
      }
    }

    HadoopFileIO io() {
      return new HadoopFileIO(conf.value().get());
    }

    ModelArchive archive() throws IOException {
      return ModelArchive.open(io(), model);
    }

    DecoderModel openModel(ComputeBackend backend) throws IOException {
      return Models.open(archive(), backend.linearAlgebra());
    }

    /**
     * The backend for this task: on the GPU Spark assigned to it when the stage carries a GPU
     * resource profile (see {@link GpuScheduling}), else the CPU.
     */
    ComputeBackends.Choice backend() {
      return ComputeBackends.forDevices(taskGpus(), LOG::warn);
    }

    /** The GPU addresses Spark assigned to the running task; none outside a GPU stage. */
    static List<String> taskGpus() {
      org.apache.spark.TaskContext task = org.apache.spark.TaskContext.get();
      if (task != null) {
        org.apache.spark.resource.ResourceInformation gpu = task.resourcesJMap().get(GpuScheduling.GPU);
        if (gpu != null) {
          return List.of(gpu.addresses());
        }
      }
      return List.of();
    }

    /**
     * One linear's weights in [out, in], read from its own shard with positioned reads: the
     * plan row already names the shard and the orientation, so no other header is read.
     */
    float[] readLinear(PlannedLinear planned) throws IOException {
      HadoopFileIO io = io();
      try (SafetensorsReader reader = SafetensorsReader.open(io.newInputFile(io.resolve(model, planned.shard)))) {
        return ArchiveWeights.outByIn(planned.linear, reader.readFloats(planned.tensorName()));
      }
    }
  }

  /** Token windows to embedded hidden states, one sample at a time. */
  static final class EmbedChunk implements Function<Tuple2<Integer, int[][]>, SampleChunk> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;

    EmbedChunk(JobContext context) {
      this.context = context;
    }

    @Override
    public SampleChunk call(Tuple2<Integer, int[][]> chunk) throws IOException {
      context.maybeFail("embed");
      int[][] tokens = chunk._2();
      HiddenStates[] hidden = new HiddenStates[tokens.length];
      try (DecoderModel model = context.openModel(context.backend().backend())) {
        for (int i = 0; i < tokens.length; i++) {
          hidden[i] = model.embed(new int[][] {tokens[i]});
        }
      }
      return new SampleChunk(chunk._1(), tokens, hidden);
    }
  }

  /**
   * Runs one dense block over a partition's chunks with hooks, loading the block once per
   * partition; emits each chunk's statistics per key.
   */
  static final class CollectStatistics implements PairFlatMapFunction<Iterator<SampleChunk>, String, ChunkStatistics> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final int block;
    private final CalibrationStatistics.HessianStorage storage;

    private final InputHook.ExpertInputs expertInputs;

    CollectStatistics(JobContext context, int block, CalibrationStatistics.HessianStorage storage) {
      this(context, block, storage, InputHook.ExpertInputs.ROUTED);
    }

    /** {@code expertInputs}: whether a routed expert's statistics see its routed tokens or all of them. */
    CollectStatistics(JobContext context, int block, CalibrationStatistics.HessianStorage storage, InputHook.ExpertInputs expertInputs) {
      this.context = context;
      this.block = block;
      this.storage = storage;
      this.expertInputs = expertInputs;
    }

    @Override
    public Iterator<Tuple2<String, ChunkStatistics>> call(Iterator<SampleChunk> chunks) throws IOException {
      context.maybeFail("statistics");
      List<Tuple2<String, ChunkStatistics>> out = new ArrayList<>();
      if (!chunks.hasNext()) {
        return out.iterator();
      }
      ComputeBackend backend = context.backend().backend();
      try (DecoderModel model = context.openModel(backend)) {
        BlockWeights weights = model.loadBlock(block);
        while (chunks.hasNext()) {
          SampleChunk chunk = chunks.next();
          Map<String, CalibrationStatistics> statistics = new LinkedHashMap<>();
          InputHook hook = new StatisticsHook(statistics, block, storage, expertInputs, backend);
          for (HiddenStates sample : chunk.hidden) {
            model.runBlock(weights, sample, hook);
          }
          statistics.forEach((key, value) -> out.add(new Tuple2<>(key, new ChunkStatistics(chunk.index, value))));
        }
      }
      return out.iterator();
    }
  }

  /**
   * Pushes a partition's chunks through block {@code block} with its staged pruned linears,
   * loading the block once per partition.
   */
  static final class AdvanceChunks implements FlatMapFunction<Iterator<SampleChunk>, SampleChunk> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final int block;
    private final Set<String> prunedTensors;

    /** {@code prunedTensors}: the block's linears whose staged pruned weights replace the archive's. */
    AdvanceChunks(JobContext context, int block, Set<String> prunedTensors) {
      this.context = context;
      this.block = block;
      this.prunedTensors = prunedTensors;
    }

    @Override
    public Iterator<SampleChunk> call(Iterator<SampleChunk> chunks) throws IOException {
      List<SampleChunk> out = new ArrayList<>();
      if (!chunks.hasNext()) {
        return out.iterator();
      }
      try (DecoderModel model = context.openModel(context.backend().backend())) {
        BlockWeights weights = model.loadBlock(block);
        HadoopFileIO io = context.io();
        for (Linear linear : model.layout().blocks().get(block).linears()) {
          if (prunedTensors.contains(linear.tensorName())) {
            weights = weights.withTensor(linear.tensorName(), StagedTensors.readOutByIn(io, context.staging, linear));
          }
        }
        while (chunks.hasNext()) {
          SampleChunk chunk = chunks.next();
          HiddenStates[] next = new HiddenStates[chunk.hidden.length];
          for (int i = 0; i < chunk.hidden.length; i++) {
            next[i] = model.runBlock(weights, chunk.hidden[i], InputHook.NONE);
          }
          out.add(new SampleChunk(chunk.index, chunk.tokens, next));
        }
      }
      context.maybeFail("advance");
      return out.iterator();
    }
  }

  /**
   * Scores one linear: reads its weights from the archive, prunes with the method's kernel,
   * stages the pruned weights in the archive's dtype and returns the mask.
   */
  static final class ScoreLinear implements Function<Tuple2<PlannedLinear, CalibrationStatistics>, LinearResult> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final Broadcast<Map<String, CalibrationStatistics>> channelStatistics;
    private final Wanda.Group wandaGroup;
    private final dev.sparkprune.scoring.methods.Refinement refinement;

    private final int minExpertTokens;

    /** {@code minExpertTokens}: a routed expert calibrated on fewer tokens is pruned with magnitude. */
    ScoreLinear(
        JobContext context, Broadcast<Map<String, CalibrationStatistics>> channelStatistics, Wanda.Group wandaGroup,
        dev.sparkprune.scoring.methods.Refinement refinement, int minExpertTokens) {
      this.context = context;
      this.channelStatistics = channelStatistics;
      this.wandaGroup = wandaGroup;
      this.refinement = refinement;
      this.minExpertTokens = minExpertTokens;
    }

    @Override
    public LinearResult call(Tuple2<PlannedLinear, CalibrationStatistics> task) throws IOException {
      PlannedLinear planned = task._1();
      CalibrationStatistics statistics = task._2();
      if (statistics == null && channelStatistics != null) {
        statistics = channelStatistics.value().get(planned.statisticsKey());
      }
      long start = System.nanoTime();
      float[] values = context.readLinear(planned);
      Linear linear = planned.linear;
      ComputeBackends.Choice backend = context.backend();
      long calibrationTokens = statistics == null ? -1 : statistics.tokens();
      PruningMethod method = planned.method;
      String fallback = "";
      // Statistics of a handful of routed tokens say little: magnitude needs none.
      if (linear.isRoutedExpert() && method.needsCalibration() && statistics != null && calibrationTokens < minExpertTokens) {
        fallback = String.format(
            Locale.ROOT, "magnitude: %d calibration tokens, fewer than --min-expert-tokens %d", calibrationTokens, minExpertTokens);
        method = PruningMethod.MAGNITUDE;
        statistics = null;
      }
      // The method's mask, then DSnoT and the ADMM update when asked for (Refinement.NONE: the method alone).
      // A magnitude fallback has no trustworthy statistics to refine or update from.
      dev.sparkprune.scoring.methods.Refinement applied = fallback.isEmpty() ? refinement : dev.sparkprune.scoring.methods.Refinement.NONE;
      PruneResult result = applied.prune(
          method,
          planned.tensorName(),
          Weights.of((int) linear.outFeatures(), (int) linear.inFeatures(), values),
          statistics,
          planned.target,
          backend.backend(),
          context.threads,
          wandaGroup);
      StagedTensors.write(context.io(), context.staging, linear, planned.dtype, result.weights());
      // After the side effect: a retried attempt must overwrite what the failed one staged.
      context.maybeFail("score");
      return new LinearResult(
          planned.block(),
          linear.name(),
          planned.tensorName(),
          result.mask(),
          result.reconstructionLoss().orElse(Double.NaN),
          result.damping().orElse(Double.NaN),
          (System.nanoTime() - start) / 1e9,
          Placement.of(backend))
          .withExpert(linear.expert().map(Expert::label).orElse(""), calibrationTokens, fallback);
    }
  }

  /** A linear's mask as Parquet rows of at most {@link #MASK_ROWS_PER_RECORD} rows each. */
  static final class MaskRows implements FlatMapFunction<LinearResult, Row> {
    private static final long serialVersionUID = 1L;

    @Override
    public Iterator<Row> call(LinearResult result) {
      Mask mask = result.mask;
      List<Row> rows = new ArrayList<>();
      for (int start = 0; start < mask.rows(); start += MASK_ROWS_PER_RECORD) {
        int count = Math.min(MASK_ROWS_PER_RECORD, mask.rows() - start);
        byte[] bits = mask.bits(start, count);
        long kept = 0;
        for (byte b : bits) {
          kept += Integer.bitCount(b & 0xFF);
        }
        rows.add(RowFactory.create(result.tensor, result.linear, start, count, mask.cols(), kept, bits, result.block));
      }
      return rows.iterator();
    }
  }

  /**
   * Rewrites one shard into the staged model: same tensors, order, dtypes and metadata; pruned
   * tensors from their staged files, every other tensor copied byte for byte.
   */
  static final class WriteShard implements Function<String, Integer> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final Set<String> prunedTensors;
    private final String modelDirectory;

    WriteShard(JobContext context, Set<String> prunedTensors, String modelDirectory) {
      this.context = context;
      this.prunedTensors = prunedTensors;
      this.modelDirectory = modelDirectory;
    }

    @Override
    public Integer call(String shard) throws IOException {
      HadoopFileIO io = context.io();
      ModelArchive archive = context.archive();
      String target = io.resolve(modelDirectory, shard);
      // A retried attempt starts over; the run's staging folder is private to this run.
      io.delete(target);
      int tensors;
      try (SafetensorsReader reader = archive.openShard(shard);
          OutputStream out = new BufferedOutputStream(io.newOutputFile(target).create(), 1 << 20)) {
        tensors = reader.tensors().size();
        List<TensorSpec> specs = new ArrayList<>();
        reader.tensors().forEach(tensor -> specs.add(TensorSpec.of(tensor)));
        try (SafetensorsWriter writer = SafetensorsWriter.create(out, specs, reader.metadata())) {
          OutputStream sink = new WriterSink(writer);
          boolean first = true;
          for (TensorInfo tensor : reader.tensors()) {
            if (!first) {
              // Mid-file: a retried attempt must start the shard over.
              context.maybeFail("write");
            }
            first = false;
            if (prunedTensors.contains(tensor.name())) {
              StagedTensors.copyRaw(io, context.staging, tensor.name(), sink);
            } else {
              reader.copyRaw(tensor, sink);
            }
          }
        }
      }
      return tensors;
    }
  }

  /** Feeds bytes through the writer, which checks every tensor gets exactly its bytes. */
  private static final class WriterSink extends OutputStream {
    private final SafetensorsWriter writer;

    WriterSink(SafetensorsWriter writer) {
      this.writer = writer;
    }

    @Override
    public void write(int b) throws IOException {
      writer.writeBytes(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] bytes, int offset, int length) throws IOException {
      writer.writeBytes(bytes, offset, length);
    }
  }
}
