package dev.sparkprune.jobs.prune.output;

import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.model.ArchiveWeights;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.FusedExpertSlice;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ArchiveReader;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.SourceFormat;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import dev.sparkprune.tensorio.quant.Mxfp4Blocks;
import dev.sparkprune.tensorio.quant.Quantization;
import dev.sparkprune.tensorio.quant.QuantizationError;
import dev.sparkprune.tensorio.quant.Requantization;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.List;
import java.util.Map;

/**
 * Pruned weights staged by the scoring tasks, one small safetensors file per pruned unit in the
 * archive's own stored format, so the next block's forward pass and the final archive see
 * exactly the weights the output will hold:
 * <ul>
 *   <li>a plain linear: its tensor in the archive's dtype and stored orientation;
 *   <li>a quantized linear (FP8 128x128 blocks): its codes and scales as {@link SourceFormat}
 *       writes them: masked in place when the method only pruned (every kept weight the source's),
 *       else the moved blocks re-quantized by the release's rule.
 *   <li>one expert's gate, up or down of a gpt-oss fused expert tensor ({@link FusedExpertSlice}):
 *       BF16, its [out, in] values; MXFP4, its stored rows of {@code _blocks} and {@code _scales}
 *       ([out, in / 32, 16] and [out, in / 32]), masked in place (the zero nibble, scales the
 *       source's) when the method only pruned, else re-quantized group by group
 *       ({@link Mxfp4Blocks#updateOutByIn}). The archive writer puts the rows back in place.
 * </ul>
 */
public final class StagedTensors {
  public static final String DIRECTORY = "_pruned";
  private static final Requantization PLAIN = new Requantization(QuantizationError.NONE, 0, 0);

  private StagedTensors() {}

  static String directory(FileIO io, String staging) {
    return io.resolve(staging, DIRECTORY);
  }

  static String fileName(String tensor) {
    return tensor + ".safetensors";
  }

  /**
   * Stages a pruned linear that is a tensor of its own. {@code source} reads the archive,
   * {@code sourceValues} are the linear's weights as read ([out, in]), {@code result} the method's;
   * {@code scaleFormat} is the archive's, for FP8 blocks re-quantized.
   * Returns what writing a quantized tensor in its format cost (no blocks for a plain one).
   */
  public static Requantization write(
      FileIO io, String staging, ArchiveReader source, ArchiveTensor tensor, Quantization.ScaleFormat scaleFormat, Linear linear,
      float[] sourceValues, PruneResult result) throws IOException {
    String location = io.resolve(directory(io, staging), fileName(linear.tensorName()));
    // A retried task attempt overwrites its own earlier output: same inputs, same bytes.
    io.delete(location);
    if (linear.fusedSlice().isPresent()) {
      return writeSlice(io, location, source, tensor, linear, sourceValues, result);
    }
    if (!tensor.isQuantized()) {
      float[] stored = ArchiveWeights.asStored(linear, result.weights());
      try (OutputStream stream = new BufferedOutputStream(io.newOutputFile(location).create(), 1 << 20);
          SafetensorsWriter writer = SafetensorsWriter.create(
              stream, List.of(new TensorSpec(linear.tensorName(), tensor.dtype(), linear.storedShape())), Map.of())) {
        writer.writeFloats(stored, 0, stored.length);
      }
      return PLAIN;
    }
    // FP8 weights are stored [out, in], the linear's orientation: masks and floats apply as they are.
    try (OutputStream stream = new BufferedOutputStream(io.newOutputFile(location).create(), 1 << 20);
        SafetensorsWriter writer = SafetensorsWriter.create(stream, SourceFormat.specs(tensor), Map.of())) {
      if (onlyPruned(sourceValues, result)) {
        SourceFormat.writeMasked(source, tensor, expert -> result.mask(), writer.dataStream());
        return new Requantization(QuantizationError.NONE, 0, blocks(tensor));
      }
      return SourceFormat.writeUpdated(source, tensor, expert -> result.weights(), scaleFormat, writer.dataStream());
    }
  }

  /** Names of a fused slice's staged MXFP4 components: the linear's own name with the release's suffixes. */
  static String sliceBlocks(Linear linear) {
    return linear.tensorName() + "_blocks";
  }

  static String sliceScales(Linear linear) {
    return linear.tensorName() + "_scales";
  }

  private static Requantization writeSlice(
      FileIO io, String location, ArchiveReader source, ArchiveTensor tensor, Linear linear, float[] sourceValues, PruneResult result)
      throws IOException {
    FusedExpertSlice slice = linear.fusedSlice().orElseThrow();
    int out = (int) linear.outFeatures();
    int in = (int) linear.inFeatures();
    if (!tensor.isQuantized()) {
      // BF16 (or F16/F32) gpt-oss: the [out, in] values in the tensor's dtype, rounded as every plain output.
      try (OutputStream stream = new BufferedOutputStream(io.newOutputFile(location).create(), 1 << 20);
          SafetensorsWriter writer = SafetensorsWriter.create(
              stream, List.of(new TensorSpec(linear.tensorName(), tensor.dtype(), new long[] {out, in})), Map.of())) {
        writer.writeFloats(result.weights(), 0, out * in);
      }
      return PLAIN;
    }
    ValidationException.check(
        tensor.storage() == ArchiveTensor.Storage.MXFP4,
        "Cannot write %s: fused expert tensor %s is stored %s; gpt-oss experts are BF16 or MXFP4", linear, tensor.name(), tensor.storageLabel());
    int groups = in / Mxfp4Blocks.GROUP;
    byte[] blocks = slice.rows(source.readStoredRows(tensor.data(), slice.expert(), 1), groups * Mxfp4Blocks.GROUP_BYTES);
    byte[] scales = slice.rows(source.readStoredRows(tensor.scales().orElseThrow(), slice.expert(), 1), groups);
    Requantization written;
    if (onlyPruned(sourceValues, result)) {
      Mxfp4Blocks.mask(blocks, 0, out, in, result.mask());
      written = new Requantization(QuantizationError.NONE, 0, (long) out * groups);
    } else {
      Mxfp4Blocks.Quantized quantized = Mxfp4Blocks.updateOutByIn(linear.tensorName(), result.weights(), out, in, blocks, scales);
      blocks = quantized.blocks();
      scales = quantized.scales();
      written = new Requantization(quantized.error(), quantized.requantizedGroups(), (long) out * groups);
    }
    List<TensorSpec> specs = List.of(
        new TensorSpec(sliceBlocks(linear), DType.U8, new long[] {out, groups, Mxfp4Blocks.GROUP_BYTES}),
        new TensorSpec(sliceScales(linear), DType.U8, new long[] {out, groups}));
    try (OutputStream stream = new BufferedOutputStream(io.newOutputFile(location).create(), 1 << 20);
        SafetensorsWriter writer = SafetensorsWriter.create(stream, specs, Map.of())) {
      writer.writeBytes(blocks, 0, blocks.length);
      writer.writeBytes(scales, 0, scales.length);
    }
    return written;
  }

  /**
   * A staged fused slice's stored bytes: BF16 [out, in] values, or MXFP4 blocks or scales rows
   * ({@code scales} picks which).
   */
  static byte[] readSliceBytes(FileIO io, String staging, Linear linear, boolean scales) throws IOException {
    try (SafetensorsReader reader = SafetensorsReader.open(io.newInputFile(io.resolve(directory(io, staging), fileName(linear.tensorName()))))) {
      String name = reader.contains(linear.tensorName()) ? linear.tensorName() : scales ? sliceScales(linear) : sliceBlocks(linear);
      TensorInfo info = reader.tensor(name);
      return reader.readRawRows(info, 0, (int) info.shape()[0]);
    }
  }

  /**
   * Stages a planned linear's pruning result from a task: opens the archive's shards it needs
   * (positioned reads of its codes and scales only) and writes as {@link #write} does.
   */
  public static Requantization stage(JobContext context, PlannedLinear planned, float[] sourceValues, PruneResult result)
      throws IOException {
    try (ArchiveReader source = ArchiveReader.at(context.io(), context.model())) {
      return write(context.io(), context.staging(), source, planned.tensor(), planned.scaleFormat, planned.linear, sourceValues, result);
    }
  }

  /**
   * Whether the method only pruned: every kept weight is its source value bit for bit and every
   * pruned one zero, so masking the stored codes gives exactly these weights.
   */
  static boolean onlyPruned(float[] sourceValues, PruneResult result) {
    float[] weights = result.weights();
    Mask mask = result.mask();
    int cols = mask.cols();
    for (int i = 0; i < weights.length; i++) {
      boolean kept = mask.isKept(i / cols, i % cols);
      if (kept ? Float.floatToRawIntBits(weights[i]) != Float.floatToRawIntBits(sourceValues[i]) : weights[i] != 0) {
        return false;
      }
    }
    return true;
  }

  private static long blocks(ArchiveTensor tensor) {
    return tensor.scales().orElseThrow().numel();
  }

  /** The staged weights of a linear, as [out, in] floats (dequantized exactly). */
  public static float[] readOutByIn(FileIO io, String staging, ArchiveTensor tensor, Linear linear) throws IOException {
    String directory = directory(io, staging);
    String file = fileName(linear.tensorName());
    if (linear.fusedSlice().isPresent()) {
      try (SafetensorsReader reader = SafetensorsReader.open(io.newInputFile(io.resolve(directory, file)))) {
        if (reader.contains(linear.tensorName())) {
          return reader.readFloats(linear.tensorName());
        }
      }
      int out = (int) linear.outFeatures();
      int in = (int) linear.inFeatures();
      float[] inByOut = new float[out * in];
      Mxfp4Blocks.decodeInByOut(
          readSliceBytes(io, staging, linear, false), 0, readSliceBytes(io, staging, linear, true), 0, out, in, inByOut, 0);
      float[] outByIn = new float[out * in];
      for (int i = 0; i < in; i++) {
        for (int o = 0; o < out; o++) {
          outByIn[o * in + i] = inByOut[i * out + o];
        }
      }
      return outByIn;
    }
    try (SafetensorsReader header = SafetensorsReader.open(io.newInputFile(io.resolve(directory, file)));
        ArchiveReader reader = ArchiveReader.at(io, directory)) {
      return ArchiveWeights.outByIn(linear, reader.readFloats(tensor.storedIn(file, header)));
    }
  }

  /** Deletes the run's staged tensors once the archive holds them (they are no part of the output). */
  public static void delete(HadoopFileIO io, String staging) throws IOException {
    org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(directory(io, staging));
    path.getFileSystem(io.conf()).delete(path, true);
  }

  /** Copies stored component {@code component} of the staged tensor {@code tensor}, unchanged, to {@code out}. */
  static void copyComponent(FileIO io, String staging, String tensor, String component, OutputStream out) throws IOException {
    try (SafetensorsReader reader = SafetensorsReader.open(io.newInputFile(io.resolve(directory(io, staging), fileName(tensor))))) {
      TensorInfo info = reader.tensor(component);
      reader.copyRaw(info, out);
    }
  }


}
