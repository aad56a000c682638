package dev.sparkprune.tensorio.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparkprune.tensorio.MiniFloats;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ArchiveReader;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * tensor-io's quantized formats against ml_dtypes (Google's float8/float4/e8m0 types) and a
 * numpy implementation of the release rules: decode tables code by code, rounding of seeded
 * floats and of every midpoint, FP8 block and MXFP4 quantization, and fixture dequantization,
 * all bit for bit. {@code bin/setup-format-references} computes the references; without it these
 * tests skip.
 */
class TestFormatReferences {
  /** The setup's output folder, found from the module or the repository root. */
  static Path references() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      Path candidate = dir.resolve(".format-references/expected");
      if (Files.isRegularFile(candidate.resolve(".complete"))) {
        return candidate;
      }
    }
    assumeTrue(false, "ml_dtypes format references are absent: run bin/setup-format-references (needs python3 with venv)");
    throw new IllegalStateException("unreachable");
  }

  private static SafetensorsReader open(String file) throws IOException {
    return SafetensorsReader.open(new LocalFileIO().newInputFile(references().resolve(file).toString()));
  }

  private static byte[] bytes(SafetensorsReader reader, String name) throws IOException {
    return reader.readRawRows(reader.tensor(name), 0, (int) reader.tensor(name).rows());
  }

  private static void assertSameBits(float actual, float expected, String what) {
    if (Float.isNaN(expected)) {
      assertThat(actual).as(what).isNaN();
    } else {
      assertThat(Float.floatToRawIntBits(actual)).as("%s: %s vs %s", what, actual, expected).isEqualTo(Float.floatToRawIntBits(expected));
    }
  }

  @Test
  void decodeTablesEqualMlDtypes() throws IOException {
    try (SafetensorsReader tables = open("tables.safetensors")) {
      float[] e4m3 = tables.readFloats("e4m3");
      float[] e5m2 = tables.readFloats("e5m2");
      float[] e2m1 = tables.readFloats("e2m1");
      float[] e8m0 = tables.readFloats("e8m0");
      for (int code = 0; code < 256; code++) {
        assertSameBits(MiniFloats.e4m3(code), e4m3[code], "e4m3 " + code);
        assertSameBits(MiniFloats.e5m2(code), e5m2[code], "e5m2 " + code);
        assertSameBits(MiniFloats.e8m0(code), e8m0[code], "e8m0 " + code);
      }
      for (int code = 0; code < 16; code++) {
        assertSameBits(MiniFloats.e2m1(code), e2m1[code], "e2m1 " + code);
      }
    }
  }

  @Test
  void roundingEqualsMlDtypesCastsOnSeededFloatsAndEveryMidpoint() throws IOException {
    try (SafetensorsReader casts = open("casts.safetensors")) {
      float[] e4m3In = casts.readFloats("e4m3_in");
      byte[] e4m3Codes = bytes(casts, "e4m3_codes");
      for (int i = 0; i < e4m3In.length; i++) {
        assertThat(MiniFloats.encodeE4m3(e4m3In[i])).as("e4m3 of %s", e4m3In[i]).isEqualTo(e4m3Codes[i]);
      }
      float[] e2m1In = casts.readFloats("e2m1_in");
      byte[] e2m1Codes = bytes(casts, "e2m1_codes");
      for (int i = 0; i < e2m1In.length; i++) {
        assertThat(MiniFloats.encodeE2m1(e2m1In[i])).as("e2m1 of %s", e2m1In[i]).isEqualTo(e2m1Codes[i] & 0xFF);
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"square", "ragged", "tall"})
  void fp8BlockQuantizationEqualsTheNumpyReleaseRule(String name) throws IOException {
    try (SafetensorsReader reference = open("fp8_blocks.safetensors")) {
      long[] shape = reference.tensor(name).shape();
      float[] weights = reference.readFloats(name);
      for (Quantization.ScaleFormat format : Quantization.ScaleFormat.values()) {
        String suffix = format == Quantization.ScaleFormat.UE8M0 ? "_ue8m0" : "";
        Fp8Blocks.Quantized quantized = Fp8Blocks.quantize(name, weights, (int) shape[0], (int) shape[1], format);
        assertThat(quantized.codes()).as("%s codes", format).isEqualTo(bytes(reference, name + "_codes" + suffix));
        assertThat(quantized.scales()).as("%s scales", format).isEqualTo(reference.readFloats(name + "_scales" + suffix));
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"expert", "wide"})
  void mxfp4QuantizationEqualsTheNumpyOcpRule(String name) throws IOException {
    try (SafetensorsReader reference = open("mxfp4.safetensors")) {
      long[] shape = reference.tensor(name).shape();
      Mxfp4Blocks.Quantized quantized = Mxfp4Blocks.quantizeOutByIn(name, reference.readFloats(name), (int) shape[0], (int) shape[1]);
      assertThat(quantized.blocks()).isEqualTo(bytes(reference, name + "_blocks"));
      assertThat(quantized.scales()).isEqualTo(bytes(reference, name + "_scales"));
    }
  }

  @Test
  void fixtureFp8WeightsDequantizeAsNumpysFloat32Product() throws IOException {
    Path fixture = SharedData.path("fixtures/models/deepseek_v3_fp8");
    Path expected = references().resolve("deepseek_v3_fp8_dequantized.safetensors");
    assumeTrue(Files.exists(expected), "the references were computed without ../shared: rerun bin/setup-format-references");
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), fixture.toString());
    try (SafetensorsReader reference = open("deepseek_v3_fp8_dequantized.safetensors");
        ArchiveReader reader = new ArchiveReader(archive)) {
      assertThat(reference.tensors()).hasSize(4);
      for (var tensor : reference.tensors()) {
        assertThat(reader.readFloats(tensor.name())).as(tensor.name()).isEqualTo(reference.readFloats(tensor.name()));
      }
    }
  }
}
