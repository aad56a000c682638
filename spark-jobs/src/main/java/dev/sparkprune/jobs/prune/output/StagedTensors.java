package dev.sparkprune.jobs.prune.output;

import dev.sparkprune.scoring.model.ArchiveWeights;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.List;
import java.util.Map;

/**
 * Pruned weights staged by the scoring tasks, one small safetensors file per linear in the
 * archive's own dtype and stored orientation, so the next block's forward pass and the final
 * archive see exactly the weights the output will hold.
 */
public final class StagedTensors {
  public static final String DIRECTORY = "_pruned";

  private StagedTensors() {}

  static String location(FileIO io, String staging, String tensor) {
    return io.resolve(io.resolve(staging, DIRECTORY), tensor + ".safetensors");
  }

  /** Writes [out, in] float weights, transposing back when the archive stores [in, out]. */
  public static void write(FileIO io, String staging, Linear linear, DType dtype, float[] weights) throws IOException {
    float[] stored = ArchiveWeights.asStored(linear, weights);
    String location = location(io, staging, linear.tensorName());
    // A retried task attempt overwrites its own earlier output: same inputs, same bytes.
    io.delete(location);
    try (OutputStream stream = new BufferedOutputStream(io.newOutputFile(location).create(), 1 << 20);
        SafetensorsWriter writer = SafetensorsWriter.create(stream, List.of(new TensorSpec(linear.tensorName(), dtype, linear.storedShape())), Map.of())) {
      writer.writeFloats(stored, 0, stored.length);
    }
  }

  /** The staged weights as [out, in] floats. */
  public static float[] readOutByIn(FileIO io, String staging, Linear linear) throws IOException {
    try (SafetensorsReader reader = SafetensorsReader.open(io.newInputFile(location(io, staging, linear.tensorName())))) {
      return ArchiveWeights.outByIn(linear, reader.readFloats(linear.tensorName()));
    }
  }

  /** Deletes the run's staged tensors once the archive holds them (they are no part of the output). */
  public static void delete(HadoopFileIO io, String staging) throws IOException {
    org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(io.resolve(staging, DIRECTORY));
    path.getFileSystem(io.conf()).delete(path, true);
  }

  /** Copies the staged tensor's bytes, unchanged, to {@code out}. */
  public static void copyRaw(FileIO io, String staging, String tensor, OutputStream out) throws IOException {
    try (SafetensorsReader reader = SafetensorsReader.open(io.newInputFile(location(io, staging, tensor)))) {
      TensorInfo info = reader.tensor(tensor);
      reader.copyRaw(info, out);
    }
  }

}
