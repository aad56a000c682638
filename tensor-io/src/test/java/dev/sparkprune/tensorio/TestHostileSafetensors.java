package dev.sparkprune.tensorio;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each malformed file is written by the test; each must fail on open with a clear message. */
class TestHostileSafetensors {
  @TempDir Path dir;

  private Path write(String name, long declaredHeaderLength, String json, int dataBytes) throws IOException {
    byte[] header = json.getBytes(StandardCharsets.UTF_8);
    ByteBuffer buffer = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    buffer.putLong(declaredHeaderLength).put(header);
    Path file = dir.resolve(name);
    Files.write(file, buffer.array());
    return file;
  }

  private Path write(String name, String json, int dataBytes) throws IOException {
    return write(name, json.getBytes(StandardCharsets.UTF_8).length, json, dataBytes);
  }

  private AbstractThrowableAssert<?, ? extends Throwable> assertOpenFails(Path file) {
    return assertThatThrownBy(
            () -> {
              try (SafetensorsReader reader = SafetensorsReader.open(new HadoopFileIO(new Configuration()).newInputFile(file.toString()))) {
                reader.tensors();
              }
            })
        .isInstanceOf(ValidationException.class);
  }

  @Test
  void fileShorterThanTheLengthPrefix() throws IOException {
    Path file = dir.resolve("tiny.safetensors");
    Files.write(file, new byte[] {1, 2, 3});
    assertOpenFails(file).hasMessageContaining("3 bytes is too short for the 8-byte header length");
  }

  @Test
  void headerLengthOverTheCap() throws IOException {
    assertOpenFails(write("huge.safetensors", 200L << 20, "{}", 0))
        .hasMessageContaining("header length 209715200 is over the 16777216-byte limit (real headers are a few hundred KB)");
  }

  @Test
  void headerLengthWithTheTopBitSet() throws IOException {
    assertOpenFails(write("negative.safetensors", -1L, "{}", 0))
        .hasMessageContaining("header length 18446744073709551615 is over the");
  }

  @Test
  void headerLengthPastEndOfFile() throws IOException {
    assertOpenFails(write("past.safetensors", 4096, "{}", 0))
        .hasMessageContaining("header length 4096 runs past the end of the file (10 bytes)");
  }

  @Test
  void invalidJson() throws IOException {
    assertOpenFails(write("json.safetensors", "{\"w\": {\"dtype\": ", 0)).hasMessageContaining("not valid JSON");
  }

  @Test
  void headerThatIsNotAnObject() throws IOException {
    assertOpenFails(write("array.safetensors", "[1, 2]", 0)).hasMessageContaining("expected a JSON object");
  }

  @Test
  void unknownDtype() throws IOException {
    assertOpenFails(write("dtype.safetensors", "{\"w\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4))
        .hasMessageContaining("tensor 'w': Unknown dtype: 'F12'");
  }

  @Test
  void shapeTimesDtypeDisagreesWithByteRange() throws IOException {
    assertOpenFails(write("size.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20))
        .hasMessageContaining("tensor 'w' F32[2, 3] needs 24 bytes but data_offsets [0, 20] span 20");
  }

  @Test
  void shapeThatOverflowsSixtyFourBits() throws IOException {
    assertOpenFails(
            write("overflow.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4))
        .hasMessageContaining("shape overflows a 64-bit size");
  }

  @Test
  void negativeDimension() throws IOException {
    assertOpenFails(write("neg.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4))
        .hasMessageContaining("tensor 'w' shape[0] is not a non-negative integer: -1");
  }

  @Test
  void offsetsOutOfBoundsAsInATruncatedFile() throws IOException {
    assertOpenFails(write("oob.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8))
        .hasMessageContaining("tensor 'w' data_offsets [0, 16] run past the data section (8 bytes); the file may be truncated");
  }

  @Test
  void overlappingTensors() throws IOException {
    String json =
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    assertOpenFails(write("overlap.safetensors", json, 12))
        .hasMessageContaining("tensor 'b' data_offsets [4, 12] overlap the previous tensor, which ends at 8");
  }

  @Test
  void holeBetweenTensors() throws IOException {
    String json =
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    assertOpenFails(write("hole.safetensors", json, 12)).hasMessageContaining("bytes [4, 8) before tensor 'b' belong to no tensor");
  }

  @Test
  void trailingBytesNotCoveredByAnyTensor() throws IOException {
    assertOpenFails(write("tail.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12))
        .hasMessageContaining("tensors cover 4 bytes but the data section holds 12");
  }

  @Test
  void duplicateTensorNames() throws IOException {
    String json =
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    assertOpenFails(write("dup.safetensors", json, 8)).hasMessageContaining("Duplicate field 'a'");
  }

  @Test
  void metadataWithNonStringValues() throws IOException {
    assertOpenFails(write("meta.safetensors", "{\"__metadata__\":{\"n\":3}}", 0))
        .hasMessageContaining("__metadata__ value for 'n' is not a string");
  }

  @Test
  void missingDataOffsets() throws IOException {
    assertOpenFails(write("nooffsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4))
        .hasMessageContaining("tensor 'w' has no data_offsets array");
  }

  /**
   * A 90 MB header is inside the format's 100 MB limit but describes over a million tensors: it
   * cost 2.4 GB of memory to open. Refused from its length alone, before anything is read.
   */
  @Test
  void aNinetyMegabyteHeaderIsRefusedBeforeItIsRead() throws IOException {
    Path file = dir.resolve("ninety.safetensors");
    long header = 90L << 20;
    try (java.io.RandomAccessFile out = new java.io.RandomAccessFile(file.toFile(), "rw")) {
      out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header).array());
      out.setLength(8 + header);
    }
    assertOpenFails(file).hasMessage("Invalid safetensors file %s: header length %d is over the 16777216-byte limit (real headers are a few"
        + " hundred KB)", file, header);
  }

  /** Writes a header of {@code tensors} empty tensors (the least bytes per tensor a valid header allows). */
  static Path manyTensors(Path file, int tensors) throws IOException {
    StringBuilder json = new StringBuilder("{");
    for (int i = 0; i < tensors; i++) {
      json.append(i == 0 ? "" : ",").append(String.format(java.util.Locale.ROOT, "\"t%07d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}", i));
    }
    byte[] header = json.append('}').toString().getBytes(StandardCharsets.UTF_8);
    ByteBuffer buffer = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
    Files.write(file, buffer.putLong(header.length).put(header).array());
    return file;
  }

  /** Opens a safetensors file and prints its tensor count: run in a JVM with a small heap. */
  public static final class OpenOne {
    public static void main(String[] args) throws IOException {
      try (SafetensorsReader reader = SafetensorsReader.open(new HadoopFileIO(new Configuration()).newInputFile(args[0]))) {
        System.out.println(reader.tensors().size());
      }
    }
  }

  /**
   * The header is parsed as a stream, keeping only each tensor's description: 60,000 tensors in a
   * 3.2 MB header open within a 32 MB heap, where parsing the header as one JSON tree runs out of
   * memory. Run in a JVM of its own with -Xmx32m.
   */
  @Test
  void aHeaderIsParsedInMemoryBoundedByItsTensors() throws Exception {
    Path file = manyTensors(dir.resolve("many.safetensors"), 60_000);
    java.util.List<String> command = new java.util.ArrayList<>(java.util.List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx32m", "-XX:+UseSerialGC",
        "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")), OpenOne.class.getName(), file.toString()));
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    org.assertj.core.api.Assertions.assertThat(process.waitFor(120, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
    org.assertj.core.api.Assertions.assertThat(process.exitValue()).as(output).isZero();
    // The last line: logging libraries may say something first.
    org.assertj.core.api.Assertions.assertThat(output.strip().lines().reduce((first, second) -> second).orElse("")).isEqualTo("60000");
  }
}
