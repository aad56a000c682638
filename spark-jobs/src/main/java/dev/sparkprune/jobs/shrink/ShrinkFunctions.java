package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.gradient.GradientFiles;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.AttentionGroups;
import dev.sparkprune.scoring.structure.StructureCalibration;
import dev.sparkprune.scoring.structure.TaylorScores;
import dev.sparkprune.scoring.structure.TaylorImportance;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import java.io.BufferedOutputStream;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.OutputStream;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.api.java.function.Function;
import scala.Tuple2;

/** The shrink job's executor functions: static, holding only resolved settings and broadcasts. */
final class ShrinkFunctions {
  private ShrinkFunctions() {}

  /**
   * Runs a partition's chunks through the dense model, block-major (each block read once per
   * partition), and returns each chunk's summary as Java-serialized bytes: small vectors only.
   */
  static final class CollectSummaries implements FlatMapFunction<Iterator<Tuple2<Integer, int[][]>>, byte[]> {
    private static final long serialVersionUID = 1L;

    private final JobContext context;
    private final int maxSpan;

    CollectSummaries(JobContext context, int maxSpan) {
      this.context = context;
      this.maxSpan = maxSpan;
    }

    @Override
    public Iterator<byte[]> call(Iterator<Tuple2<Integer, int[][]>> partition) throws IOException {
      Map<Integer, int[][]> chunks = new LinkedHashMap<>();
      partition.forEachRemaining(chunk -> chunks.put(chunk._1(), chunk._2()));
      List<byte[]> out = new ArrayList<>();
      if (chunks.isEmpty()) {
        return out.iterator();
      }
      context.probe("statistics");
      ModelArchive archive = context.archive();
      try (DecoderModel model = context.openModel(context.backend().backend())) {
        for (ChunkSummary summary : StructureCalibration.run(model, ModelShape.of(archive.config()), chunks, maxSpan)) {
          out.add(serialize(summary));
        }
      }
      return out.iterator();
    }
  }

  /**
   * One block's first-order Taylor importance of its MLP channels and KV groups
   * ({@link TaylorScores}: |W . mean dL/dW| summed over what each structure removes), from the
   * block's seven dense linears and their statistics in the run's gradient set, as Java-serialized
   * bytes like the chunk summaries. Memory: those linears' weights (4 bytes per weight) and mean
   * gradients (8 bytes per weight).
   */
  static final class TaylorBlock implements Function<Integer, byte[]> {
    private static final long serialVersionUID = 1L;

    private final JobContext context;
    private final String gradients;
    private final AttentionGroups groups;

    TaylorBlock(JobContext context, String gradients, AttentionGroups groups) {
      this.context = context;
      this.gradients = gradients;
      this.groups = groups;
    }

    @Override
    public byte[] call(Integer block) throws IOException {
      ModelArchive archive = context.archive();
      ModelShape shape = ModelShape.of(archive.config());
      Map<String, float[]> weights = new HashMap<>();
      Map<String, double[]> means = new HashMap<>();
      for (Linear linear : Architectures.layout(archive).blocks().get(block).linears()) {
        if (linear.expert().isEmpty()) {
          weights.put(linear.name(), context.readLinear(archive.tensor(linear.tensorName()), linear));
          means.put(linear.name(), GradientFiles.read(context.io(), gradients, linear).meanGradient());
        }
      }
      int hidden = shape.hidden();
      double[] kv = TaylorScores.kvGroups(weights.get(Q), means.get(Q), weights.get(K), means.get(K), weights.get(V), means.get(V),
          weights.get(O), means.get(O), hidden, groups);
      double[] mlp = !weights.containsKey(DOWN) ? new double[0] : TaylorScores.mlpChannels(weights.get(GATE), means.get(GATE),
          weights.get(UP), means.get(UP), weights.get(DOWN), means.get(DOWN), hidden, shape.intermediate());
      return serialize(new TaylorImportance.Block(block, mlp, kv));
    }

    private static final String Q = "self_attn.q_proj";
    private static final String K = "self_attn.k_proj";
    private static final String V = "self_attn.v_proj";
    private static final String O = "self_attn.o_proj";
    private static final String GATE = "mlp.gate_proj";
    private static final String UP = "mlp.up_proj";
    private static final String DOWN = "mlp.down_proj";
  }

  /** Writes one shard of the shrunk archive, with the staged refits in place of their sliced tensors; a retried attempt starts the file over. */
  static final class WriteShard implements Function<String, Long> {
    private static final long serialVersionUID = 1L;

    private final JobContext context;
    private final ShrinkPlan plan;
    private final String directory;
    private final RepairFunctions.StagedRefits refits;

    WriteShard(JobContext context, ShrinkPlan plan, String directory, RepairFunctions.StagedRefits refits) {
      this.context = context;
      this.plan = plan;
      this.directory = directory;
      this.refits = refits;
    }

    @Override
    public Long call(String shard) throws IOException {
      HadoopFileIO io = context.io();
      String target = io.resolve(directory, shard);
      io.delete(target);
      try (OutputStream out = new BufferedOutputStream(io.newOutputFile(target).create(), 1 << 20)) {
        context.probe("write");
        new ShrunkArchive(context.archive(), plan, refits).writeShard(shard, out);
      }
      return io.newInputFile(target).length();
    }
  }

  /** Only the summary's own types: nothing else may be instantiated while reading. */
  private static final java.io.ObjectInputFilter SUMMARY_CLASSES = java.io.ObjectInputFilter.Config.createFilter(
      "maxdepth=20;dev.sparkprune.scoring.structure.*;dev.sparkprune.scoring.repair.CandidateScore;"
          + "dev.sparkprune.scoring.repair.ShrinkCandidate;dev.sparkprune.jobs.shrink.BudgetSearch$Scored;java.util.*;java.lang.*;!*");

  static byte[] serialize(Serializable value) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(value);
    }
    return bytes.toByteArray();
  }

  /** Reads a summary this job's tasks serialized (trusted: never bytes from a file). */
  static ChunkSummary deserialize(byte[] bytes) throws IOException {
    return deserialize(bytes, ChunkSummary.class);
  }

  /** Reads a value of the structure package this job's tasks serialized (trusted: never bytes from a file). */
  static <T> T deserialize(byte[] bytes, Class<T> type) throws IOException {
    try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes))) {
      in.setObjectInputFilter(SUMMARY_CLASSES);
      return type.cast(in.readObject());
    } catch (ClassNotFoundException e) {
      throw new IOException("Cannot read a " + type.getSimpleName() + ": " + e.getMessage(), e);
    }
  }
}
