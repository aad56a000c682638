package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.StructureCalibration;
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
      "maxdepth=20;dev.sparkprune.scoring.structure.*;java.util.*;java.lang.*;!*");

  static byte[] serialize(Serializable value) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(value);
    }
    return bytes.toByteArray();
  }

  /** Reads a summary this job's tasks serialized (trusted: never bytes from a file). */
  static ChunkSummary deserialize(byte[] bytes) throws IOException {
    try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes))) {
      in.setObjectInputFilter(SUMMARY_CLASSES);
      return (ChunkSummary) in.readObject();
    } catch (ClassNotFoundException e) {
      throw new IOException("Cannot read a chunk summary: " + e.getMessage(), e);
    }
  }
}
