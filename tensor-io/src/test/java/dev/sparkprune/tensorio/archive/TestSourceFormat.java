package dev.sparkprune.tensorio.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.ArchiveFiles;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.MiniFloats;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import dev.sparkprune.tensorio.quant.Fp8Blocks;
import dev.sparkprune.tensorio.quant.Mxfp4Blocks;
import dev.sparkprune.tensorio.quant.Quantization;
import dev.sparkprune.tensorio.quant.Requantization;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.shrink.TensorSlice;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.IntFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Writing in the source's format, checked on the stored bytes and on what reading the output
 * back gives: masks zero exactly the pruned codes and nothing else, unchanged blocks keep their
 * bytes when weights are updated, re-quantization stays within the formats' rounding bounds,
 * whole experts and quantized tensors travel with their scales, and the BF16 alternative.
 */
class TestSourceFormat {
  private static final LocalFileIO IO = new LocalFileIO();
  private static final String DOWN = "model.layers.0.mlp.down_proj.weight";
  private static final String GATE_UP = "model.layers.1.mlp.experts.gate_up_proj";

  @TempDir Path temp;

  private static ModelArchive fixture(String name) throws IOException {
    return ModelArchive.open(IO, SharedData.path("fixtures/models/" + name).toString());
  }

  /** A one-tensor archive beside the source's config: the components written by {@code body}. */
  private ModelArchive writeAlone(ModelArchive source, List<TensorSpec> specs, Body body) throws IOException {
    Path dir = temp.resolve("out" + System.nanoTime());
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("config.json"), source.config().text());
    try (OutputStream out = Files.newOutputStream(dir.resolve("model.safetensors"));
        SafetensorsWriter writer = SafetensorsWriter.create(out, specs, Map.of())) {
      body.write(writer.dataStream());
    }
    return ModelArchive.open(IO, dir.toString());
  }

  interface Body {
    void write(OutputStream out) throws IOException;
  }

  private static Mask randomMask(int rows, int cols, long seed) {
    Random random = new Random(seed);
    Mask.Builder builder = Mask.builder(rows, cols);
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        if (random.nextInt(2) == 0) {
          builder.prune(r, c);
        }
      }
    }
    return builder.build();
  }

  @Test
  void fp8MaskZeroesThePrunedCodesAndNothingElse() throws IOException {
    ModelArchive source = fixture("deepseek_v3_fp8");
    ArchiveTensor down = source.tensor(DOWN);
    Mask mask = randomMask(192, 320, 1);
    try (ArchiveReader reader = new ArchiveReader(source)) {
      ModelArchive out = writeAlone(source, SourceFormat.specs(down), sink -> SourceFormat.writeMasked(reader, down, e -> mask, sink));
      try (ArchiveReader written = new ArchiveReader(out)) {
        byte[] expected = reader.readStoredRows(down.data(), 0, 192);
        for (int i = 0; i < expected.length; i++) {
          expected[i] = mask.isKept(i / 320, i % 320) ? expected[i] : 0;
        }
        assertThat(written.readStoredRows(out.tensor(DOWN).data(), 0, 192)).isEqualTo(expected);
        assertThat(written.readStoredRows(out.tensor(DOWN).scales().orElseThrow(), 0, 2))
            .isEqualTo(reader.readStoredRows(down.scales().orElseThrow(), 0, 2));
        float[] values = reader.readFloats(down);
        for (int i = 0; i < values.length; i++) {
          values[i] = mask.isKept(i / 320, i % 320) ? values[i] : 0f;
        }
        assertThat(written.readFloats(DOWN)).isEqualTo(values);
      }
    }
  }

  @Test
  void mxfp4MaskZeroesThePrunedNibblesOfEachExpertAndNothingElse() throws IOException {
    ModelArchive source = fixture("gpt_oss_mxfp4");
    ArchiveTensor gateUp = source.tensor(GATE_UP);
    // Per expert, in the linear's [out, in] = [192, 128] orientation (the stored one).
    IntFunction<Mask> masks = expert -> randomMask(192, 128, 100 + expert);
    try (ArchiveReader reader = new ArchiveReader(source)) {
      ModelArchive out = writeAlone(source, SourceFormat.specs(gateUp), sink -> SourceFormat.writeMasked(reader, gateUp, masks, sink));
      try (ArchiveReader written = new ArchiveReader(out)) {
        assertThat(written.readStoredRows(out.tensor(GATE_UP).scales().orElseThrow(), 0, 8))
            .isEqualTo(reader.readStoredRows(gateUp.scales().orElseThrow(), 0, 8));
        for (int expert = 0; expert < 8; expert++) {
          Mask mask = masks.apply(expert);
          byte[] expected = reader.readStoredRows(gateUp.data(), expert, 1);
          for (int i = 0; i < 192 * 128; i++) {
            if (!mask.isKept(i / 128, i % 128)) {
              expected[i / 2] &= (byte) (i % 2 == 0 ? 0xF0 : 0x0F);
            }
          }
          assertThat(written.readStoredRows(out.tensor(GATE_UP).data(), expert, 1)).as("expert %d", expert).isEqualTo(expected);
          float[] values = reader.readRows(gateUp, expert, 1);
          for (int i = 0; i < values.length; i++) {
            // Logical [in, out] = [128, 192]: value (in i / 192, out i % 192).
            values[i] = mask.isKept(i % 192, i / 192) ? values[i] : 0f;
          }
          assertThat(written.readRows(GATE_UP, expert, 1)).isEqualTo(values);
        }
      }
    }
  }

  @Test
  void updatedWeightsThatOnlyLostEntriesAreWrittenAsTheMaskedSourceBytes() throws IOException {
    ModelArchive source = fixture("deepseek_v3_fp8");
    ArchiveTensor down = source.tensor(DOWN);
    Mask mask = randomMask(192, 320, 2);
    try (ArchiveReader reader = new ArchiveReader(source)) {
      float[] pruned = reader.readFloats(down);
      for (int i = 0; i < pruned.length; i++) {
        pruned[i] = mask.isKept(i / 320, i % 320) ? pruned[i] : 0f;
      }
      ByteArrayOutputStream masked = new ByteArrayOutputStream();
      SourceFormat.writeMasked(reader, down, e -> mask, masked);
      ByteArrayOutputStream updated = new ByteArrayOutputStream();
      Requantization result = SourceFormat.writeUpdated(reader, down, e -> pruned, Quantization.ScaleFormat.FLOAT, updated);
      assertThat(updated.toByteArray()).isEqualTo(masked.toByteArray());
      assertThat(result.requantizedBlocks()).isZero();
      assertThat(result.blocks()).isEqualTo(6);
      assertThat(result.error().maxAbsError()).isZero();

      // SparseGPT-like: one block's kept weights move; only that block is quantized anew.
      for (int r = 0; r < 128; r++) {
        for (int c = 128; c < 256; c++) {
          pruned[r * 320 + c] *= 1.01f;
        }
      }
      ByteArrayOutputStream moved = new ByteArrayOutputStream();
      result = SourceFormat.writeUpdated(reader, down, e -> pruned, Quantization.ScaleFormat.FLOAT, moved);
      assertThat(result.requantizedBlocks()).isEqualTo(1);
      assertThat(result.error().maxAbsError()).isPositive();
      byte[] before = masked.toByteArray();
      byte[] after = moved.toByteArray();
      int changedOutside = 0;
      for (int i = 0; i < 192 * 320; i++) {
        boolean inMovedBlock = i / 320 < 128 && i % 320 >= 128 && i % 320 < 256;
        changedOutside += !inMovedBlock && after[i] != before[i] ? 1 : 0;
      }
      assertThat(changedOutside).isZero();
      int scales = 192 * 320;
      for (int block = 0; block < 6; block++) {
        byte[] was = java.util.Arrays.copyOfRange(before, scales + 4 * block, scales + 4 * block + 4);
        byte[] is = java.util.Arrays.copyOfRange(after, scales + 4 * block, scales + 4 * block + 4);
        if (block == 1) {
          assertThat(is).isNotEqualTo(was);
        } else {
          assertThat(is).as("scale %d", block).isEqualTo(was);
        }
      }
    }
  }

  @Test
  void mxfp4UpdateKeepsUntouchedGroupsAndRequantizesMovedOnes() throws IOException {
    ModelArchive source = fixture("gpt_oss_mxfp4");
    ArchiveTensor gateUp = source.tensor(GATE_UP);
    try (ArchiveReader reader = new ArchiveReader(source)) {
      float[][] outByIn = new float[8][];
      for (int e = 0; e < 8; e++) {
        outByIn[e] = TestQuantizedArchives.transpose(reader.readRows(gateUp, e, 1), 128, 192);
      }
      outByIn[3][7] = 0f;
      int moved = 64;
      while (outByIn[5][moved] == 0) {
        moved++;
      }
      // A sign flip moves the value off its stored code, whatever the group's scale.
      outByIn[5][moved] = -outByIn[5][moved];
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      Requantization result = SourceFormat.writeUpdated(reader, gateUp, e -> outByIn[e], Quantization.ScaleFormat.FLOAT, bytes);
      assertThat(result.blocks()).isEqualTo(8 * 192 * 4);
      assertThat(result.requantizedBlocks()).isEqualTo(1);
      byte[] out = bytes.toByteArray();
      int expertBytes = 192 * 64;
      for (int e = 0; e < 8; e++) {
        byte[] expected = reader.readStoredRows(gateUp.data(), e, 1);
        byte[] written = java.util.Arrays.copyOfRange(out, e * expertBytes, (e + 1) * expertBytes);
        if (e == 3) {
          // Value 7 of row 0 is the high nibble of byte 3; the low one (value 6) stays.
          assertThat(expected[3] & 0xF0).isNotZero();
          expected[3] &= 0x0F;
        }
        if (e == 5) {
          // The moved value's group (values 64..95 of row 0: bytes 32..47) was quantized anew.
          assertThat(moved).isLessThan(96);
          assertThat(java.util.Arrays.copyOfRange(written, 32, 48)).isNotEqualTo(java.util.Arrays.copyOfRange(expected, 32, 48));
          System.arraycopy(written, 32, expected, 32, 16);
        }
        assertThat(written).as("expert %d", e).isEqualTo(expected);
      }
    }
  }

  @Test
  void fp8RequantizationStaysWithinHalfAnE4m3StepAtTheBlockScale() {
    Random random = new Random(3);
    int rows = 300;
    int cols = 260;
    float[] values = new float[rows * cols];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(3) - 2)) * (i % cols < 3 ? 40 : 1);
    }
    for (Quantization.ScaleFormat format : Quantization.ScaleFormat.values()) {
      Fp8Blocks.Quantized quantized = Fp8Blocks.quantize("random", values, rows, cols, format);
      if (format == Quantization.ScaleFormat.UE8M0) {
        for (float scale : quantized.scales()) {
          assertThat(Math.scalb(1f, Math.getExponent(scale))).isEqualTo(scale);
        }
      }
      double squared = 0;
      double reference = 0;
      double worst = 0;
      for (int i = 0; i < values.length; i++) {
        float scale = quantized.scales()[(i / cols / 128) * 3 + (i % cols) / 128];
        double dequantized = (double) MiniFloats.e4m3(quantized.codes()[i]) * scale;
        double halfStep = Math.scalb(1.0, Math.max(Math.getExponent(values[i] / scale), -6) - 4) * scale;
        worst = Math.max(worst, Math.abs(dequantized - values[i]) / halfStep);
        squared += Math.pow(dequantized - values[i], 2);
        reference += Math.pow(values[i], 2);
      }
      assertThat(worst).as("%s: largest error in half E4M3 steps", format).isLessThanOrEqualTo(1 + 1e-6);
      // E4M3's relative step is 2^-3, so no value is off by more than 2^-4 of itself in its binade.
      double relative = Math.sqrt(squared / reference);
      assertThat(relative).isLessThan(Math.pow(2, -4));
      assertThat(quantized.error().relativeFrobenius()).isCloseTo(relative, org.assertj.core.data.Offset.offset(1e-9));
    }
  }

  @Test
  void mxfp4RequantizationStaysWithinHalfAnE2m1StepAtTheSharedScale() {
    Random random = new Random(4);
    int out = 40;
    int in = 256;
    float[] values = new float[out * in];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (random.nextGaussian() * Math.pow(2, (i / 32) % 11 - 5));
    }
    Mxfp4Blocks.Quantized quantized = Mxfp4Blocks.quantizeOutByIn("random", values, out, in);
    double worst = 0;
    double largestScaled = 0;
    for (int i = 0; i < values.length; i++) {
      int group = i / 32;
      int exponent = (quantized.scales()[group] & 0xFF) - 127;
      int code = quantized.blocks()[i / 2] >>> (4 * (i % 2)) & 0xF;
      double dequantized = Math.scalb((double) MiniFloats.e2m1(code), exponent);
      double scaled = Math.abs(values[i]) / Math.pow(2, exponent);
      // E2M1 steps are 0.5 below 2, 1 below 4, 2 up to 6; the shared exponent keeps |w| / 2^X < 8,
      // and values above 6 saturate.
      double allowed = scaled < 2 ? 0.25 : scaled < 4 ? 0.5 : scaled <= 6 ? 1 : scaled - 6;
      worst = Math.max(worst, Math.abs(dequantized - values[i]) / (allowed * Math.pow(2, exponent)));
      largestScaled = Math.max(largestScaled, scaled);
    }
    assertThat(worst).isLessThanOrEqualTo(1);
    assertThat(largestScaled).isGreaterThan(6).isLessThan(8);
    assertThat(quantized.error().relativeFrobenius()).isBetween(0.05, 0.2);
  }

  @Test
  void exactlyRepresentableWeightsRequantizeLosslessly() {
    Random random = new Random(5);
    // FP8: codes at a power-of-two scale, each block holding a ±448 so amax / 448 is that scale.
    float[] fp8 = new float[256 * 256];
    for (int i = 0; i < fp8.length; i++) {
      int code = random.nextInt(256);
      fp8[i] = (code & 0x7F) == 0x7F ? 0 : MiniFloats.e4m3(code) * 0x1p-9f;
    }
    for (int block = 0; block < 4; block++) {
      fp8[(block / 2) * 128 * 256 + (block % 2) * 128] = 448 * 0x1p-9f;
    }
    Fp8Blocks.Quantized again = Fp8Blocks.quantize("exact", fp8, 256, 256, Quantization.ScaleFormat.FLOAT);
    assertThat(again.error().maxAbsError()).isZero();
    // MXFP4: any E2M1 codes at any exponent, each group reaching 4 or 6.
    float[] mx = new float[16 * 64];
    for (int g = 0; g < mx.length / 32; g++) {
      int exponent = random.nextInt(40) - 20;
      for (int i = 0; i < 32; i++) {
        mx[g * 32 + i] = Math.scalb(MiniFloats.e2m1(random.nextInt(16)), exponent);
      }
      mx[g * 32 + random.nextInt(32)] = Math.scalb(random.nextBoolean() ? 4f : -6f, exponent);
    }
    assertThat(Mxfp4Blocks.quantizeOutByIn("exact", mx, 16, 64).error().maxAbsError()).isZero();
  }

  @Test
  void wholeExpertsAreSlicedFromCodesAndScalesAlike() throws IOException {
    ModelArchive source = fixture("gpt_oss_mxfp4");
    ArchiveTensor gateUp = source.tensor(GATE_UP);
    int[] kept = {1, 4, 6};
    List<TensorSlice> slices = TensorSlice.keepRows(gateUp, "model.layers.0.mlp.experts.gate_up_proj", kept);
    assertThat(slices).extracting(TensorSlice::target)
        .containsExactly("model.layers.0.mlp.experts.gate_up_proj_blocks", "model.layers.0.mlp.experts.gate_up_proj_scales");
    List<TensorSpec> specs = new ArrayList<>();
    slices.forEach(slice -> specs.add(slice.spec()));
    try (ArchiveReader reader = new ArchiveReader(source)) {
      ModelArchive out = writeAlone(source, specs, sink -> {
        for (int i = 0; i < slices.size(); i++) {
          for (int row : kept) {
            sink.write(reader.readStoredRows(gateUp.components().get(i), row, 1));
          }
        }
      });
      try (ArchiveReader written = new ArchiveReader(out)) {
        assertThat(out.tensor("model.layers.0.mlp.experts.gate_up_proj").shape()).containsExactly(3, 128, 192);
        for (int k = 0; k < kept.length; k++) {
          assertThat(written.readRows("model.layers.0.mlp.experts.gate_up_proj", k, 1)).isEqualTo(reader.readRows(gateUp, kept[k], 1));
        }
      }
    }
    assertThatThrownBy(() -> TensorSlice.keepRows(fixture("deepseek_v3_fp8").tensor(DOWN), DOWN, new int[] {0}))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot keep some rows of " + DOWN + ": it is stored with 128x128 FP8 block scales; keep or drop it whole");
  }

  @Test
  void expertRemovalCarriesScalesAndStructuredCutsThroughBlocksAreRefused() throws IOException {
    Path fp8 = QuantizedFixtures.toFp8(SharedData.path("fixtures/models/mixtral"), temp.resolve("mixtral_fp8"));
    ModelArchive source = ModelArchive.open(IO, fp8.toString());
    assertThat(source.tensor("model.layers.0.block_sparse_moe.experts.3.w2.weight").storage()).isEqualTo(ArchiveTensor.Storage.FP8_BLOCKS);
    ModelShape shape = ModelShape.of(source.config());
    Map<Integer, int[]> experts = Map.of(0, new int[] {0, 3, 5, 6}, 1, new int[] {1, 2, 3, 7}, 2, new int[] {0, 1, 2, 4});
    Path out = temp.resolve("shrunk");
    Files.createDirectories(out);
    new ShrunkArchive(source, ShrinkPlan.of(shape, List.of(0, 1, 2), Map.of(), Map.of(), experts)).writeTo(IO, out.toString());
    ModelArchive shrunk = ModelArchive.open(IO, out.toString());
    assertThat(shrunk.quantization().method()).isEqualTo(Quantization.Method.FP8);
    try (ArchiveReader before = new ArchiveReader(source); ArchiveReader after = new ArchiveReader(shrunk)) {
      for (int b = 0; b < 3; b++) {
        for (int e = 0; e < 4; e++) {
          String name = "model.layers." + b + ".block_sparse_moe.experts." + e + ".w2.weight";
          String sourceName = "model.layers." + b + ".block_sparse_moe.experts." + experts.get(b)[e] + ".w2.weight";
          assertThat(shrunk.tensor(name).storage()).isEqualTo(ArchiveTensor.Storage.FP8_BLOCKS);
          assertThat(after.readFloats(name)).isEqualTo(before.readFloats(sourceName));
        }
      }
    }
    ShrinkPlan cut = ShrinkPlan.of(shape, List.of(0, 1, 2), Map.of(), Map.of(0, new int[] {1}, 1, new int[] {1}, 2, new int[] {1}), Map.of());
    assertThatThrownBy(() -> new ShrunkArchive(source, cut))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot shrink " + fp8 + ": 'model.layers.0.self_attn.k_proj.weight' is stored F8_E4M3 (128x128 block scales) and the plan "
            + "cuts inside it; sparkprune removes whole quantized tensors or whole MXFP4 experts only (dequantize the model to BF16 for "
            + "structured shrinking)");
  }

  @Test
  void bf16AlternativeWritesTheLogicalTensorAndListsItsModule() throws IOException {
    ModelArchive source = fixture("deepseek_v3_fp8");
    Path dir = temp.resolve("bf16");
    ArchiveFiles.copyNonWeightFiles(SharedData.path("fixtures/models/deepseek_v3_fp8"), dir);
    ArchiveTensor oProj = source.tensor("model.layers.1.self_attn.o_proj.weight");
    String module = SourceFormat.notConvertedModule(oProj);
    assertThat(module).isEqualTo("model.layers.1.self_attn.o_proj");
    Files.writeString(dir.resolve("config.json"), Quantization.withNotConverted(source.config().text(), List.of(module)));
    List<TensorSpec> specs = new ArrayList<>();
    for (ArchiveTensor tensor : source.tensors()) {
      specs.addAll(tensor == oProj ? SourceFormat.plainSpecs(tensor, tensor.name(), DType.BF16) : SourceFormat.specs(tensor));
    }
    try (ArchiveReader reader = new ArchiveReader(source);
        OutputStream stream = Files.newOutputStream(dir.resolve("model.safetensors"));
        SafetensorsWriter writer = SafetensorsWriter.create(stream, specs, Map.of())) {
      for (ArchiveTensor tensor : source.tensors()) {
        if (tensor == oProj) {
          float[] values = reader.readFloats(tensor);
          writer.writeFloats(values, 0, values.length);
        } else {
          SourceFormat.copy(reader, tensor, writer.dataStream());
        }
      }
    }
    ModelArchive written = ModelArchive.open(IO, dir.toString());
    JsonNode listed = new ObjectMapper().readTree(written.config().text()).get("quantization_config").get("modules_to_not_convert");
    assertThat(listed.toString()).isEqualTo("[\"model.layers.1.self_attn.o_proj\"]");
    assertThat(written.quantization().isNotConverted(module)).isTrue();
    assertThat(written.tensor(oProj.name()).storage()).isEqualTo(ArchiveTensor.Storage.PLAIN);
    assertThat(written.tensor(oProj.name()).dtype()).isEqualTo(DType.BF16);
    assertThat(written.findStoredTensor(oProj.name() + "_scale_inv")).isEmpty();
    try (ArchiveReader before = new ArchiveReader(source); ArchiveReader after = new ArchiveReader(written)) {
      float[] expected = before.readFloats(oProj);
      float[] actual = after.readFloats(oProj.name());
      for (int i = 0; i < expected.length; i++) {
        // FP8 values are 4 significant bits times a float32 scale: BF16 rounds to 8 bits.
        expected[i] = dev.sparkprune.tensorio.HalfFloats.bf16ToFloat(dev.sparkprune.tensorio.HalfFloats.floatToBf16(expected[i]));
      }
      assertThat(actual).isEqualTo(expected);
      assertThat(after.readFloats("model.layers.1.self_attn.q_a_proj.weight")).isEqualTo(before.readFloats("model.layers.1.self_attn.q_a_proj.weight"));
    }
  }
}
