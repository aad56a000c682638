package dev.sparkprune.scoring.stats;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.ValidationException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.SplittableRandom;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

class TestCalibrationStatistics {
  private static final LinearAlgebra LINALG = NetlibLinearAlgebra.defaultInstance();

  private static float[] activations(int tokens, int channels, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] x = new float[tokens * channels];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (random.nextDouble() * 2 - 1);
    }
    return x;
  }

  private static CalibrationStatistics of(float[] x, int tokens, int channels, CalibrationStatistics.HessianStorage storage) {
    CalibrationStatistics statistics = CalibrationStatistics.create(channels, storage);
    statistics.add(x, 0, tokens, tokens / 16, LINALG);
    return statistics;
  }

  @Test
  void sumsAndHessianEqualADirectComputation() {
    int tokens = 64;
    int channels = 12;
    float[] x = activations(tokens, channels, 1);
    CalibrationStatistics statistics = of(x, tokens, channels, CalibrationStatistics.HessianStorage.DOUBLE);
    double[] h = statistics.hessian();
    float[] scaler = statistics.scalerRow();
    for (int i = 0; i < channels; i++) {
      double sum = 0;
      for (int t = 0; t < tokens; t++) {
        sum += (double) x[t * channels + i] * x[t * channels + i];
      }
      assertThat((double) scaler[i]).isCloseTo(sum / 4, Offset.offset(1e-5));
      for (int j = 0; j < channels; j++) {
        double dot = 0;
        for (int t = 0; t < tokens; t++) {
          dot += (double) x[t * channels + i] * x[t * channels + j];
        }
        assertThat(h[i * channels + j]).isCloseTo(2.0 / 4 * dot, Offset.offset(1e-4));
        assertThat(h[i * channels + j]).isEqualTo(h[j * channels + i]);
      }
    }
    assertThat(statistics.tokens()).isEqualTo(64);
    assertThat(statistics.sequences()).isEqualTo(4);
  }

  @Test
  void mergingIsAssociativeAndEqualsOneAccumulation() {
    int channels = 20;
    float[] a = activations(32, channels, 2);
    float[] b = activations(48, channels, 3);
    float[] c = activations(16, channels, 4);
    var storage = CalibrationStatistics.HessianStorage.DOUBLE;
    CalibrationStatistics left = of(a, 32, channels, storage).merge(of(b, 48, channels, storage)).merge(of(c, 16, channels, storage));
    CalibrationStatistics right = of(a, 32, channels, storage).merge(of(b, 48, channels, storage).merge(of(c, 16, channels, storage)));
    CalibrationStatistics single = CalibrationStatistics.create(channels, storage);
    single.add(a, 0, 32, 2, LINALG);
    single.add(b, 0, 48, 3, LINALG);
    single.add(c, 0, 16, 1, LINALG);
    for (CalibrationStatistics other : new CalibrationStatistics[] {right, single}) {
      assertThat(other.tokens()).isEqualTo(left.tokens());
      assertThat(other.sequences()).isEqualTo(left.sequences());
      double[] h1 = left.hessian();
      double[] h2 = other.hessian();
      for (int i = 0; i < h1.length; i++) {
        assertThat(h2[i]).isCloseTo(h1[i], Offset.offset(1e-12 * (1 + Math.abs(h1[i]))));
      }
      double[] s1 = left.sumSquares();
      double[] s2 = other.sumSquares();
      for (int j = 0; j < channels; j++) {
        assertThat(s2[j]).isCloseTo(s1[j], Offset.offset(1e-12 * s1[j]));
      }
    }
  }

  @Test
  void floatStorageAgreesWithDoubleToFloatPrecision() {
    float[] x = activations(256, 16, 5);
    double[] exact = of(x, 256, 16, CalibrationStatistics.HessianStorage.DOUBLE).hessian();
    double[] compact = of(x, 256, 16, CalibrationStatistics.HessianStorage.FLOAT).hessian();
    for (int i = 0; i < exact.length; i++) {
      assertThat(compact[i]).isCloseTo(exact[i], Offset.offset(1e-5 * (1 + Math.abs(exact[i]))));
    }
  }

  @Test
  void bytesAndJavaSerializationRoundTripExactly() throws IOException, ClassNotFoundException {
    float[] x = activations(40, 9, 6);
    for (var storage : CalibrationStatistics.HessianStorage.values()) {
      CalibrationStatistics statistics = of(x, 40, 9, storage);
      CalibrationStatistics decoded = CalibrationStatistics.fromBytes("memory", statistics.toBytes());
      assertThat(decoded.storage()).isEqualTo(storage);
      assertThat(decoded.sumSquares()).isEqualTo(statistics.sumSquares());
      assertThat(decoded.tokens()).isEqualTo(40);
      assertThat(decoded.sequences()).isEqualTo(2);
      if (storage != CalibrationStatistics.HessianStorage.NONE) {
        assertThat(decoded.hessian()).isEqualTo(statistics.hessian());
      }
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
        out.writeObject(statistics);
      }
      try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
        CalibrationStatistics copy = (CalibrationStatistics) in.readObject();
        assertThat(copy.sumSquares()).isEqualTo(statistics.sumSquares());
        copy.add(x, 0, 40, 2, LINALG);
        assertThat(copy.tokens()).isEqualTo(80);
      }
    }
  }

  @Test
  void badInput() {
    CalibrationStatistics statistics = CalibrationStatistics.create(8, CalibrationStatistics.HessianStorage.NONE);
    assertThatThrownBy(statistics::scalerRow)
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("no calibration sequences were added");
    assertThatThrownBy(() -> statistics.add(new float[15], 0, 2, 1, LINALG))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot add 2 tokens of 8 channels: the input holds 15 values");
    assertThatThrownBy(() -> statistics.merge(CalibrationStatistics.create(9, CalibrationStatistics.HessianStorage.NONE)))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Cannot merge statistics of 9 channels");
    statistics.add(new float[16], 0, 2, 1, LINALG);
    assertThatThrownBy(statistics::hessian).isInstanceOf(ValidationException.class).hasMessageContaining("without X^T X");
    assertThatThrownBy(() -> CalibrationStatistics.fromBytes("stats.bin", new byte[] {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'}))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid statistics file stats.bin: not sparkprune statistics version 1 or 2 (version null)");
  }

  @Test
  void channelSumsEqualADirectSumAndRoundTripInVersion2() {
    float[] x = activations(40, 9, 8);
    CalibrationStatistics statistics = of(x, 40, 9, CalibrationStatistics.HessianStorage.NONE);
    double[] sums = statistics.channelSums("DSnoT");
    for (int j = 0; j < 9; j++) {
      double sum = 0;
      for (int t = 0; t < 40; t++) {
        sum += x[t * 9 + j];
      }
      assertThat(sums[j]).isCloseTo(sum, Offset.offset(1e-12));
    }
    CalibrationStatistics decoded = CalibrationStatistics.fromBytes("memory", statistics.toBytes());
    assertThat(decoded.channelSums("DSnoT")).isEqualTo(sums);
    assertThat(new String(statistics.toBytes(), java.nio.charset.StandardCharsets.ISO_8859_1)).contains("\"version\":\"2\"");
  }

  /** A version 1 file, written here as the layout's documentation gives it (no sums). */
  private static byte[] versionOneFile(double[] sumSquares, long tokens, long sequences) throws IOException {
    java.util.Map<String, String> metadata = new java.util.LinkedHashMap<>();
    metadata.put("format", "sparkprune-statistics");
    metadata.put("version", "1");
    metadata.put("channels", Integer.toString(sumSquares.length));
    metadata.put("tokens", Long.toString(tokens));
    metadata.put("sequences", Long.toString(sequences));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (dev.sparkprune.tensorio.SafetensorsWriter writer = dev.sparkprune.tensorio.SafetensorsWriter.create(
        out, java.util.List.of(new dev.sparkprune.tensorio.TensorSpec("sum_squares", dev.sparkprune.tensorio.DType.F64, sumSquares.length)),
        metadata)) {
      java.nio.ByteBuffer buffer = java.nio.ByteBuffer.allocate(sumSquares.length * 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      buffer.asDoubleBuffer().put(sumSquares);
      writer.writeBytes(buffer.array(), 0, buffer.capacity());
    }
    return out.toByteArray();
  }

  @Test
  void versionOneFilesStillServeWandaButNotDsnot() throws IOException {
    CalibrationStatistics old = CalibrationStatistics.fromBytes("old.safetensors", versionOneFile(new double[] {4, 8, 12}, 30, 2));
    assertThat(old.scalerRow()).containsExactly(2f, 4f, 6f);
    assertThat(old.hasSums()).isFalse();
    assertThatThrownBy(() -> old.channelSums("DSnoT"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot use DSnoT: these statistics were saved in version 1 of the layout, without per-channel sums; "
            + "calibrate again (or save the statistics again)");
    assertThat(new String(old.toBytes(), java.nio.charset.StandardCharsets.ISO_8859_1)).contains("\"version\":\"1\"");
    assertThatThrownBy(() -> old.merge(CalibrationStatistics.create(3, CalibrationStatistics.HessianStorage.NONE)))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot merge statistics of layout version 1 (no per-channel sums) with version 2 ones");
  }
}
