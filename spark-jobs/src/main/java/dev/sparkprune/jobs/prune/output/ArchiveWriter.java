package dev.sparkprune.jobs.prune.output;

import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.tensorio.io.InputFiles;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.arch.FusedExpertSlice;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.quant.Mxfp4Blocks;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.spark.api.java.function.Function;

/**
 * Writes the pruned archive under the staging folder in the input's own layout: each shard
 * rewritten by one task (pruned tensors from their staged files, every other tensor copied byte
 * for byte), then config, index and tokenizer files copied.
 */
public final class ArchiveWriter {
  private ArchiveWriter() {}

  /** Writes {@code archive} with the plan's linears pruned into {@code model/} of the run's staging folder. */
  public static void write(JobStages stages, ModelArchive archive, List<PlannedLinear> plan, ProgressLog log) throws IOException {
    write(stages, archive, StagedUnits.of(plan), log);
  }

  /** Writes {@code archive} with the staged units ({@link StagedUnits}) in place of the source's bytes. */
  public static void write(JobStages stages, ModelArchive archive, StagedUnits pruned, ProgressLog log) throws IOException {
    JobContext context = stages.context();
    HadoopFileIO io = context.io();
    String staging = context.staging();
    String modelDirectory = io.resolve(staging, "model");
    List<String> shards = new ArrayList<>();
    archive.shards().forEach(shard -> shards.add(shard.fileName()));
    stages.describe("write");
    stages.jsc().parallelize(shards, shards.size()).map(new WriteShard(context, pruned, modelDirectory)).collect();
    // Config, tokenizer and other small files; never another copy of the weights (a pickle or
    // a second format next to the safetensors would hold the unpruned model).
    for (String file : archive.otherFiles()) {
      if (!ModelArchive.isWeightFile(file)) {
        copySmallFile(io, archive.io().resolve(archive.location(), file), io.resolve(modelDirectory, file));
      }
    }
    if (archive.isSharded()) {
      copySmallFile(io, archive.io().resolve(archive.location(), ModelArchive.INDEX), io.resolve(modelDirectory, ModelArchive.INDEX));
    }
    log.line("model: %d shard(s) written, %d tensors pruned, others copied byte for byte", shards.size(), pruned.tensorCount());
  }

  private static void copySmallFile(HadoopFileIO io, String from, String to) throws IOException {
    byte[] bytes = InputFiles.readAll(io.newInputFile(from), 256L << 20);
    try (var out = io.newOutputFile(to).create()) {
      out.write(bytes);
    }
  }

  /**
   * Rewrites one shard into the staged model: same tensors, order, dtypes and metadata; pruned
   * components (a quantized weight's codes and scales alike, in whichever shard each sits) from
   * their staged files, every other tensor copied byte for byte.
   */
  static final class WriteShard implements Function<String, Integer> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final StagedUnits pruned;
    private final String modelDirectory;

    WriteShard(JobContext context, StagedUnits pruned, String modelDirectory) {
      this.context = context;
      this.pruned = pruned;
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
          OutputStream sink = writer.dataStream();
          boolean first = true;
          for (TensorInfo tensor : reader.tensors()) {
            if (!first) {
              // Mid-file: a retried attempt must start the shard over.
              context.probe("write");
            }
            first = false;
            Optional<String> staged = pruned.tensorOf(tensor.name());
            Optional<StagedUnits.SliceComponent> fused = pruned.fusedComponent(tensor.name());
            if (fused.isPresent()) {
              writeFused(io, reader, tensor, fused.get(), sink);
            } else if (staged.isPresent()) {
              StagedTensors.copyComponent(io, context.staging(), staged.get(), tensor.name(), sink);
            } else {
              reader.copyRaw(tensor, sink);
            }
          }
        }
      }
      return tensors;
    }

    /**
     * A fused expert tensor's component expert by expert (one expert's rows in memory): the
     * source's bytes with the staged slices of that expert written over their columns (BF16) or
     * rows (MXFP4 codes and scales); an expert without staged slices is the source's bytes.
     */
    private void writeFused(HadoopFileIO io, SafetensorsReader reader, TensorInfo tensor, StagedUnits.SliceComponent component,
        OutputStream sink) throws IOException {
      long experts = tensor.shape()[0];
      for (int e = 0; e < experts; e++) {
        byte[] rows = reader.readRawRows(tensor, e, 1);
        for (Linear linear : pruned.slicesOf(tensor.name(), e)) {
          FusedExpertSlice slice = linear.fusedSlice().orElseThrow();
          int in = (int) linear.inFeatures();
          switch (component) {
            case VALUES -> slice.patchPlain(
                StagedTensors.readSliceBytes(io, context.staging(), linear, false), rows, tensor.dtype().byteSize());
            case BLOCKS -> slice.patchRows(StagedTensors.readSliceBytes(io, context.staging(), linear, false), rows, in / 2);
            case SCALES -> slice.patchRows(
                StagedTensors.readSliceBytes(io, context.staging(), linear, true), rows, in / Mxfp4Blocks.GROUP);
          }
        }
        sink.write(rows);
      }
    }
  }
}
