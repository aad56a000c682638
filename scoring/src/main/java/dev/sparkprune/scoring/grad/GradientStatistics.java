package dev.sparkprune.scoring.grad;

import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.ByteArrayFile;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Per-weight sums over calibration samples of one weight matrix's per-sample gradients g_s, in
 * double: sum_s (100 g_s)^2 (GBLM-Pruner's l2 accumulator, the scale applied before squaring as
 * the authors' gradient_computation.py does), sum_s |100 g_s| (its l1 accumulator) and sum_s g_s
 * (the gradient of the mean loss times n: LLM-Pruner's first-order Taylor term). Double sums of
 * float gradients are exact to about 1e-16 relative per addition; partials {@link #plus} over
 * disjoint samples, so a job that fixes the merge order (sample order within a chunk, a fixed
 * pairwise tree over chunks) gets bit-identical results on any partitioning.
 *
 * <p>Serialized layout ({@link #toBytes}): a safetensors file with F64 [rows, cols] tensors
 * {@code sum_squares}, {@code sum_absolutes} and {@code sums}; {@code __metadata__} holds
 * {@code format=sparkprune-gradients}, {@code version=1}, {@code rows}, {@code cols},
 * {@code samples} and {@code scale}.
 */
public final class GradientStatistics implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The serialized layout's version. */
  public static final int VERSION = 1;

  /** GBLM-Pruner's per-sample scale (gradient_computation.py --scale, default 100). */
  public static final double SCALE = 100;

  private final int rows;
  private final int cols;
  private final double[] sumSquares;
  private final double[] sumAbsolutes;
  private final double[] sums;
  private long samples;

  private GradientStatistics(int rows, int cols) {
    ValidationException.check(rows > 0 && cols > 0, "Invalid gradient statistics shape [%d, %d]", rows, cols);
    ValidationException.check((long) rows * cols <= Integer.MAX_VALUE - 16, "Cannot keep gradient statistics of [%d, %d] in one array", rows, cols);
    this.rows = rows;
    this.cols = cols;
    this.sumSquares = new double[rows * cols];
    this.sumAbsolutes = new double[rows * cols];
    this.sums = new double[rows * cols];
  }

  /** No samples yet, for a weight of [rows, cols]. */
  public static GradientStatistics create(int rows, int cols) {
    return new GradientStatistics(rows, cols);
  }

  public int rows() {
    return rows;
  }

  public int cols() {
    return cols;
  }

  public long samples() {
    return samples;
  }

  /** Adds one sample's gradient, row-major [rows, cols]. */
  public void add(float[] gradient) {
    ValidationException.check(
        gradient.length == sums.length, "Cannot add a gradient of %d values to statistics of [%d, %d]", gradient.length, rows, cols);
    for (int i = 0; i < gradient.length; i++) {
      double g = gradient[i];
      double scaled = SCALE * g;
      sumSquares[i] += scaled * scaled;
      sumAbsolutes[i] += Math.abs(scaled);
      sums[i] += g;
    }
    samples++;
  }

  /** The sum of two partials over disjoint samples: this + other, in that order, as a new value. */
  public GradientStatistics plus(GradientStatistics other) {
    ValidationException.check(
        other.rows == rows && other.cols == cols,
        "Cannot add gradient statistics of [%d, %d] to [%d, %d]", other.rows, other.cols, rows, cols);
    GradientStatistics sum = new GradientStatistics(rows, cols);
    for (int i = 0; i < sums.length; i++) {
      sum.sumSquares[i] = sumSquares[i] + other.sumSquares[i];
      sum.sumAbsolutes[i] = sumAbsolutes[i] + other.sumAbsolutes[i];
      sum.sums[i] = sums[i] + other.sums[i];
    }
    sum.samples = samples + other.samples;
    return sum;
  }

  /** GBLM-Pruner's l2 gradient G = sqrt(sum_s (100 g_s)^2), rounded to float once. */
  public float[] l2() {
    checkSamples();
    float[] out = new float[sums.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) Math.sqrt(sumSquares[i]);
    }
    return out;
  }

  /** GBLM-Pruner's l1 gradient sum_s |100 g_s|. */
  public float[] l1() {
    checkSamples();
    float[] out = new float[sums.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) sumAbsolutes[i];
    }
    return out;
  }

  /** The gradient of the mean loss over the samples, (1 / n) sum_s g_s (LLM-Pruner's batch gradient). */
  public double[] meanGradient() {
    checkSamples();
    double[] out = new double[sums.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = sums[i] / samples;
    }
    return out;
  }

  private void checkSamples() {
    ValidationException.check(samples > 0, "Cannot use gradient statistics: no calibration samples were added");
  }

  /** The documented safetensors layout (see the class comment). */
  public byte[] toBytes() {
    List<TensorSpec> specs = new ArrayList<>();
    for (String name : List.of("sum_squares", "sum_absolutes", "sums")) {
      specs.add(new TensorSpec(name, DType.F64, rows, cols));
    }
    Map<String, String> metadata = new LinkedHashMap<>();
    metadata.put("format", "sparkprune-gradients");
    metadata.put("version", Integer.toString(VERSION));
    metadata.put("rows", Integer.toString(rows));
    metadata.put("cols", Integer.toString(cols));
    metadata.put("samples", Long.toString(samples));
    metadata.put("scale", Double.toString(SCALE));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (SafetensorsWriter writer = SafetensorsWriter.create(out, specs, metadata)) {
      for (double[] values : List.of(sumSquares, sumAbsolutes, sums)) {
        byte[] bytes = doublesToBytes(values);
        writer.writeBytes(bytes, 0, bytes.length);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  public static GradientStatistics fromBytes(String location, byte[] bytes) {
    try (SafetensorsReader reader = SafetensorsReader.open(new ByteArrayFile(location, bytes))) {
      Map<String, String> metadata = reader.metadata();
      ValidationException.check(
          "sparkprune-gradients".equals(metadata.get("format")) && Integer.toString(VERSION).equals(metadata.get("version")),
          "Invalid gradient statistics file %s: not sparkprune gradients version %d (format %s, version %s)",
          location, VERSION, metadata.get("format"), metadata.get("version"));
      ValidationException.check(
          Double.toString(SCALE).equals(metadata.get("scale")), "Invalid gradient statistics file %s: scale %s, expected %s", location,
          metadata.get("scale"), SCALE);
      long rows = count(location, metadata, "rows");
      long cols = count(location, metadata, "cols");
      ValidationException.check(
          rows > 0 && cols > 0 && rows * cols <= Integer.MAX_VALUE - 16, "Invalid gradient statistics file %s: shape [%d, %d]", location, rows, cols);
      GradientStatistics statistics = new GradientStatistics((int) rows, (int) cols);
      statistics.samples = count(location, metadata, "samples");
      String[] names = {"sum_squares", "sum_absolutes", "sums"};
      double[][] targets = {statistics.sumSquares, statistics.sumAbsolutes, statistics.sums};
      for (int i = 0; i < names.length; i++) {
        ValidationException.check(reader.contains(names[i]), "Invalid gradient statistics file %s: no tensor %s", location, names[i]);
        TensorInfo tensor = reader.tensor(names[i]);
        ValidationException.check(
            tensor.dtype() == DType.F64 && tensor.numel() == rows * cols && tensor.dim(0) == rows,
            "Invalid gradient statistics file %s: %s is %s, expected F64 [%d, %d]", location, names[i], tensor, rows, cols);
        ByteBuffer.wrap(reader.readRawRows(tensor, 0, (int) rows)).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(targets[i]);
      }
      return statistics;
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot read gradient statistics " + location, e);
    }
  }

  private static long count(String location, Map<String, String> metadata, String key) {
    long value;
    try {
      value = Long.parseLong(metadata.getOrDefault(key, "-1"));
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid gradient statistics file " + location + ": " + key + " is not a number");
    }
    ValidationException.check(value >= 0, "Invalid gradient statistics file %s: %s = %s", location, key, value);
    return value;
  }

  private static byte[] doublesToBytes(double[] values) {
    ByteBuffer buffer = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    buffer.asDoubleBuffer().put(values);
    return buffer.array();
  }
}
