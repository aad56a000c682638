package dev.sparkprune.tensorio;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class TestSafetensorsRoundTrip {
  @TempDir Path dir;

  static Stream<FileIO> fileSystems() {
    return Stream.of(new LocalFileIO(), new HadoopFileIO(new Configuration()));
  }

  private static float[] randomFloats(int count, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) (random.nextDouble() * 8 - 4);
    }
    return values;
  }

  private static float rounded(DType dtype, float value) {
    switch (dtype) {
      case BF16:
        return HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(value));
      case F16:
        return HalfFloats.f16ToFloat(HalfFloats.floatToF16(value));
      default:
        return value;
    }
  }

  @ParameterizedTest
  @MethodSource("fileSystems")
  void everyFloatDtypeRoundTripsThroughAWrittenFile(FileIO io) throws IOException {
    float[] values = randomFloats(6 * 10, 1);
    List<TensorSpec> specs =
        List.of(
            new TensorSpec("f32", DType.F32, 6, 10),
            new TensorSpec("bf16", DType.BF16, 6, 10),
            new TensorSpec("f16", DType.F16, 6, 10),
            new TensorSpec("f64", DType.F64, 6, 10),
            new TensorSpec("scalar", DType.F32),
            new TensorSpec("empty", DType.BF16, 0, 10));
    String location = dir.resolve("all.safetensors").toString();
    Map<String, String> metadata = Map.of("format", "pt", "note", "round trip");
    try (OutputStream out = io.newOutputFile(location).create();
        SafetensorsWriter writer = SafetensorsWriter.create(out, specs, metadata)) {
      for (int i = 0; i < 4; i++) {
        writer.writeFloats(values, 0, values.length);
      }
      writer.writeFloats(new float[] {42f}, 0, 1);
      assertThat(writer.missingTensors()).isEmpty();
    }
    try (SafetensorsReader reader = SafetensorsReader.open(io.newInputFile(location))) {
      assertThat(reader.metadata()).isEqualTo(metadata);
      assertThat(reader.dataStart() % 8).isZero();
      assertThat(reader.tensors()).extracting(TensorInfo::name).containsExactly("f32", "bf16", "f16", "f64", "scalar", "empty");
      for (DType dtype : List.of(DType.F32, DType.BF16, DType.F16, DType.F64)) {
        float[] read = reader.readFloats(dtype.name().toLowerCase(java.util.Locale.ROOT));
        for (int i = 0; i < values.length; i++) {
          assertThat(read[i]).as("%s[%d]", dtype, i).isEqualTo(rounded(dtype, values[i]));
        }
      }
      assertThat(reader.readFloats("scalar")).containsExactly(42f);
      assertThat(reader.readFloats("empty")).isEmpty();
      assertThat(reader.tensor("empty").shape()).containsExactly(0, 10);
    }
  }

  @Test
  void integerDtypesDecodeAndCopyByteExact() throws IOException {
    byte[] i8 = {-128, -1, 0, 1, 127, 5};
    byte[] u8 = {(byte) 255, 0, 7, (byte) 128};
    ByteBuffer i32 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(-7).putInt(1 << 30);
    List<TensorSpec> specs =
        List.of(new TensorSpec("i8", DType.I8, 2, 3), new TensorSpec("u8", DType.U8, 4), new TensorSpec("i32", DType.I32, 2));
    Path file = dir.resolve("ints.safetensors");
    try (OutputStream out = Files.newOutputStream(file);
        SafetensorsWriter writer = SafetensorsWriter.create(out, specs, Map.of())) {
      writer.writeBytes(i8, 0, i8.length);
      writer.writeBytes(u8, 0, u8.length);
      writer.writeBytes(i32.array(), 0, 8);
    }
    try (SafetensorsReader reader = SafetensorsReader.open(new LocalFileIO().newInputFile(file.toString()))) {
      assertThat(reader.readFloats("i8")).containsExactly(-128f, -1f, 0f, 1f, 127f, 5f);
      assertThat(reader.readFloats("u8")).containsExactly(255f, 0f, 7f, 128f);
      ByteArrayOutputStream copy = new ByteArrayOutputStream();
      reader.copyRaw(reader.tensor("i32"), copy);
      assertThat(copy.toByteArray()).isEqualTo(i32.array());
      assertThatThrownBy(() -> reader.readFloats("i32"))
          .isInstanceOf(ValidationException.class)
          .hasMessageContaining("Cannot decode tensor 'i32' of dtype I32");
    }
  }

  @ParameterizedTest
  @MethodSource("fileSystems")
  void rowRangeReadsEqualSlicesOfFullReads(FileIO io) throws IOException {
    int rows = 37;
    int cols = 200;
    float[] values = randomFloats(rows * cols, 2);
    String location = dir.resolve("rows.safetensors").toString();
    List<TensorSpec> specs = List.of(new TensorSpec("pad", DType.F32, 3), new TensorSpec("w", DType.BF16, rows, cols));
    try (OutputStream out = io.newOutputFile(location).create();
        SafetensorsWriter writer = SafetensorsWriter.create(out, specs, Map.of())) {
      writer.writeFloats(new float[] {1, 2, 3}, 0, 3);
      // Write in uneven chunks to exercise tensor boundaries inside the writer.
      writer.writeFloats(values, 0, 1001);
      writer.writeFloats(values, 1001, values.length - 1001);
    }
    try (SafetensorsReader reader = SafetensorsReader.open(io.newInputFile(location))) {
      TensorInfo tensor = reader.tensor("w");
      float[] full = reader.readFloats("w");
      int[][] ranges = {{0, 1}, {0, rows}, {5, 7}, {36, 1}, {12, 0}};
      for (int[] range : ranges) {
        float[] slice = reader.readRows(tensor, range[0], range[1]);
        assertThat(slice).isEqualTo(Arrays.copyOfRange(full, range[0] * cols, (range[0] + range[1]) * cols));
        byte[] raw = reader.readRawRows(tensor, range[0], range[1]);
        float[] decoded = new float[range[1] * cols];
        TensorCodec.decode(DType.BF16, raw, 0, decoded, 0, decoded.length);
        assertThat(decoded).isEqualTo(slice);
      }
      assertThatThrownBy(() -> reader.readRows(tensor, 30, 8))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Invalid row range [30, 38) for tensor 'w' with 37 rows");
    }
  }

  @Test
  void headerIsPaddedWithSpacesToEightBytesAndOrdersDataAsDeclared() throws IOException {
    byte[] header = SafetensorsWriter.header(List.of(new TensorSpec("b", DType.F16, 3), new TensorSpec("a", DType.F32, 1)), Map.of());
    long length = TensorCodec.readLongLE(header, 0);
    assertThat(length % 8).isZero();
    String json = new String(header, 8, (int) length, StandardCharsets.UTF_8);
    assertThat(json).startsWith("{\"b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},\"a\":");
    assertThat(json).contains("\"data_offsets\":[6,10]");
    assertThat(json.stripTrailing()).endsWith("}");
  }

  @Test
  void writerRefusesToCloseWithMissingTensorsAndDuplicateNames() throws IOException {
    OutputStream sink = new ByteArrayOutputStream();
    SafetensorsWriter writer = SafetensorsWriter.create(sink, List.of(new TensorSpec("x", DType.F32, 4)), Map.of());
    writer.writeFloats(new float[] {1, 2}, 0, 2);
    assertThatThrownBy(writer::close).isInstanceOf(IllegalStateException.class).hasMessageContaining("[x]");
    assertThatThrownBy(
            () -> SafetensorsWriter.create(
                sink, List.of(new TensorSpec("x", DType.F32, 1), new TensorSpec("x", DType.F32, 1)), Map.of()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("duplicate or reserved tensor name 'x'");
  }
}
