package dev.sparkprune.tensorio.bench;

import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.io.FileIO;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Reads and decodes a generated BF16 shard tensor by tensor on one thread, from page cache,
 * through a given {@link FileIO}; reports GB/s of file bytes per pass and the spread over passes.
 */
public final class ReadBenchmark {
  private static final int ROWS = 2048;
  private static final int COLS = 2048;

  private ReadBenchmark() {}

  /** Writes a shard of about {@code megabytes} MB of 2048 x 2048 BF16 tensors. */
  public static void writeShard(FileIO io, String location, int megabytes) throws IOException {
    long tensorBytes = (long) ROWS * COLS * 2;
    int tensors = (int) Math.max(1, ((long) megabytes << 20) / tensorBytes);
    List<TensorSpec> specs = new ArrayList<>();
    for (int i = 0; i < tensors; i++) {
      specs.add(new TensorSpec("model.layers." + i + ".mlp.up_proj.weight", DType.BF16, ROWS, COLS));
    }
    // Random finite BF16 values; one row pattern reused, the decoder does not care.
    float[] row = new float[COLS];
    SplittableRandom random = new SplittableRandom(1);
    for (int i = 0; i < COLS; i++) {
      row[i] = (float) (random.nextDouble() - 0.5) * 0.05f;
    }
    try (OutputStream out = new BufferedOutputStream(io.newOutputFile(location).create(), 1 << 20);
        SafetensorsWriter writer = SafetensorsWriter.create(out, specs, Map.of("format", "pt"))) {
      for (long r = 0; r < (long) tensors * ROWS; r++) {
        writer.writeFloats(row, 0, COLS);
      }
    }
  }

  /** Runs {@code passes} timed passes after one warm-up pass; returns GB/s per pass. */
  public static double[] run(FileIO io, String location, int passes, PrintStream out) throws IOException {
    double[] rates = new double[passes];
    float[] buffer = new float[ROWS * COLS];
    for (int pass = -1; pass < passes; pass++) {
      long bytes = 0;
      double checksum = 0;
      long start = System.nanoTime();
      try (SafetensorsReader reader = SafetensorsReader.open(io.newInputFile(location))) {
        for (TensorInfo tensor : reader.tensors()) {
          reader.readRows(tensor, 0, (int) tensor.rows(), buffer, 0);
          checksum += buffer[(int) (bytes % buffer.length)];
          bytes += tensor.byteLength();
        }
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      if (pass >= 0) {
        rates[pass] = bytes / seconds / 1e9;
        out.printf(Locale.ROOT, "  pass %d: %.0f MB in %.3f s = %.2f GB/s (checksum %.3f)%n", pass + 1, bytes / 1e6, seconds, rates[pass], checksum);
      }
    }
    double[] sorted = rates.clone();
    Arrays.sort(sorted);
    out.printf(
        Locale.ROOT,
        "  median %.2f GB/s, min %.2f, max %.2f over %d passes%n",
        sorted[sorted.length / 2],
        sorted[0],
        sorted[sorted.length - 1],
        passes);
    return rates;
  }
}
