package dev.sparkprune.jobs.gradient;

import dev.sparkprune.scoring.grad.GradientStatistics;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.InputFiles;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.Locale;

/**
 * Where a gradient set keeps its statistics: one file per linear, {@code <tensor>.safetensors}
 * in the {@link GradientStatistics} layout (F64 sums of (100 g)^2, |100 g| and g), beside
 * {@link GradientManifest#FILE}; while the pass runs, each chunk's partial of each linear under
 * {@code _partials/chunk-<c>/}. File names come from the layout's tensor names, never from a
 * manifest's content.
 */
public final class GradientFiles {
  static final String PARTIALS = "_partials";
  /** The safetensors header of a statistics file is small: three tensors and six metadata entries. */
  private static final long HEADER_BYTES = 64 << 10;

  private GradientFiles() {}

  static String location(HadoopFileIO io, String directory, String tensor) {
    return io.resolve(directory, tensor + ".safetensors");
  }

  static String partials(HadoopFileIO io, String directory) {
    return io.resolve(directory, PARTIALS);
  }

  static String partial(HadoopFileIO io, String directory, int chunk, String tensor) {
    return io.resolve(io.resolve(partials(io, directory), String.format(Locale.ROOT, "chunk-%05d", chunk)), tensor + ".safetensors");
  }

  /** Writes statistics; a retried task attempt replaces its earlier file (same inputs, same bytes). */
  static void write(HadoopFileIO io, String location, GradientStatistics statistics) throws IOException {
    io.delete(location);
    try (OutputStream out = new BufferedOutputStream(io.newOutputFile(location).create(), 1 << 20)) {
      out.write(statistics.toBytes());
    }
  }

  /** Reads statistics of a [rows x cols] weight, refusing a file of another shape or one too large for it. */
  static GradientStatistics read(HadoopFileIO io, String location, long rows, long cols) throws IOException {
    GradientStatistics statistics = GradientStatistics.fromBytes(
        location, InputFiles.readAll(io.newInputFile(location), 24 * rows * cols + HEADER_BYTES));
    ValidationException.check(statistics.rows() == rows && statistics.cols() == cols,
        "Invalid gradient statistics file %s: [%d, %d], but the weight is [%d, %d]", location, statistics.rows(), statistics.cols(), rows,
        cols);
    return statistics;
  }

  /** The folded statistics of one linear in a gradient set. */
  public static GradientStatistics read(HadoopFileIO io, String directory, Linear linear) throws IOException {
    return read(io, location(io, directory, linear.tensorName()), linear.outFeatures(), linear.inFeatures());
  }

  /** Deletes a folder and everything in it. */
  public static void deleteRecursively(HadoopFileIO io, String directory) throws IOException {
    org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(directory);
    path.getFileSystem(io.conf()).delete(path, true);
  }
}
