package dev.sparkprune.tensorio.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.QuantizedFixtures.Entry;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Broken quantized archives fail with one clear line: format checks when the archive opens,
 * before any work (unknown methods, unsupported block sizes, scales missing, orphaned or of the
 * wrong shape, quantized modules listed as not converted), and scale values as they are read.
 */
class TestHostileQuantizedArchives {
  private static final String O_PROJ = "model.layers.1.self_attn.o_proj.weight";
  private static final String GATE_UP = "model.layers.1.mlp.experts.gate_up_proj";

  @TempDir Path temp;

  private Path fp8(QuantizedFixtures.Editor editor, Consumer<ObjectNode> config) throws IOException {
    return QuantizedFixtures.copy(SharedData.path("fixtures/models/deepseek_v3_fp8"), temp.resolve("fp8"), editor, config);
  }

  private Path mxfp4(QuantizedFixtures.Editor editor) throws IOException {
    return QuantizedFixtures.copy(SharedData.path("fixtures/models/gpt_oss_mxfp4"), temp.resolve("mxfp4"), editor, config -> {});
  }

  private static ObjectNode quantization(ObjectNode config) {
    return (ObjectNode) config.get("quantization_config");
  }

  private static AbstractThrowableAssert<?, ? extends Throwable> assertOpenFails(Path archive) {
    return assertThatThrownBy(() -> ModelArchive.open(new LocalFileIO(), archive.toString()))
        .isInstanceOf(ValidationException.class)
        .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
  }

  @Test
  void unknownQuantizationMethodIsRefused() throws IOException {
    Path archive = fp8(QuantizedFixtures::keep, config -> quantization(config).put("quant_method", "awq"));
    assertOpenFails(archive).hasMessageStartingWith(
        "Unsupported quantization_config.quant_method 'awq' in " + archive.resolve("config.json") + ": sparkprune reads fp8");
  }

  @Test
  void blockSize64IsRefused() throws IOException {
    Path archive = fp8(QuantizedFixtures::keep, config -> quantization(config).putArray("weight_block_size").add(64).add(64));
    assertOpenFails(archive).hasMessage(
        "Unsupported quantization_config.weight_block_size [64,64] in " + archive.resolve("config.json")
            + ": sparkprune reads [128, 128] blocks only (every FP8 block-scaled release uses them)");
  }

  @Test
  void scaleTensorOfTheWrongShapeIsRefused() throws IOException {
    Path archive = fp8((tensor, bytes, out) -> {
      if (tensor.name().equals(O_PROJ + "_scale_inv")) {
        out.add(new Entry(new TensorSpec(tensor.name(), DType.F32, 1, 1), new byte[4]));
      } else {
        QuantizedFixtures.keep(tensor, bytes, out);
      }
    }, config -> {});
    assertOpenFails(archive).hasMessage(
        "Invalid model archive " + archive + ": scale tensor '" + O_PROJ + "_scale_inv' has shape [1, 1] but weight '"
            + O_PROJ + "' [192, 128] with 128x128 blocks needs [2, 1]");
  }

  @Test
  void missingScaleTensorIsRefused() throws IOException {
    Path archive = fp8(dropping(O_PROJ + "_scale_inv"), config -> {});
    assertOpenFails(archive).hasMessage(
        "Invalid model archive " + archive + ": F8_E4M3 weight '" + O_PROJ + "' has no scale tensor '" + O_PROJ
            + "_scale_inv' (fp8 with 128x128 blocks needs one per weight)");
  }

  @Test
  void scaleWithoutAQuantizedWeightIsRefused() throws IOException {
    Path archive = fp8((tensor, bytes, out) -> {
      QuantizedFixtures.keep(tensor, bytes, out);
      if (tensor.name().equals("model.norm.weight")) {
        out.add(new Entry(new TensorSpec("model.norm.weight_scale_inv", DType.F32, 1), new byte[4]));
      }
    }, config -> {});
    assertOpenFails(archive).hasMessage(
        "Invalid model archive " + archive + ": scale tensor 'model.norm.weight_scale_inv' belongs to 'model.norm.weight', which is BF16, not quantized");
  }

  @Test
  void fp8WeightsWithoutQuantizationConfigAreRefused() throws IOException {
    Path archive = fp8(QuantizedFixtures::keep, config -> config.remove("quantization_config"));
    assertOpenFails(archive).hasMessageContaining(
        "is F8_E4M3 but config.json has no quantization_config, so its scales are unknown");
  }

  @Test
  void quantizedModuleListedAsNotConvertedIsRefused() throws IOException {
    Path archive = fp8(QuantizedFixtures::keep,
        config -> quantization(config).putArray("modules_to_not_convert").add("lm_head").add("model.layers.1.self_attn.o_proj"));
    assertOpenFails(archive).hasMessage(
        "Invalid model archive " + archive + ": tensor '" + O_PROJ + "' is stored quantized but quantization_config lists its module "
            + "'model.layers.1.self_attn.o_proj' as not converted");
  }

  @Test
  void nanAndNegativeScalesFailWhenRead() throws IOException {
    for (float bad : new float[] {Float.NaN, -1f, Float.POSITIVE_INFINITY}) {
      Path archive = QuantizedFixtures.copy(SharedData.path("fixtures/models/deepseek_v3_fp8"), temp.resolve("bad" + bad), (tensor, bytes, out) -> {
        if (tensor.name().equals(O_PROJ + "_scale_inv")) {
          ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putFloat(4, bad);
        }
        QuantizedFixtures.keep(tensor, bytes, out);
      }, config -> {});
      ModelArchive opened = ModelArchive.open(new LocalFileIO(), archive.toString());
      try (ArchiveReader reader = new ArchiveReader(opened)) {
        assertThatThrownBy(() -> reader.readFloats(O_PROJ))
            .isInstanceOf(ValidationException.class)
            .hasMessage("Invalid model archive " + archive + ": scale tensor '" + O_PROJ + "_scale_inv' holds " + bad
                + " at [1, 0]; block scales must be finite and non-negative");
        assertThat(reader.readRows(O_PROJ, 0, 128)).hasSize(128 * 128);
      }
    }
  }

  @Test
  void mxfp4BlocksWithoutScalesAreRefused() throws IOException {
    Path archive = mxfp4(dropping(GATE_UP + "_scales"));
    assertOpenFails(archive).hasMessage(
        "Invalid model archive " + archive + ": MXFP4 blocks '" + GATE_UP + "_blocks' have no scale tensor '" + GATE_UP + "_scales'");
  }

  @Test
  void mxfp4ScalesOfTheWrongShapeAreRefused() throws IOException {
    Path archive = mxfp4((tensor, bytes, out) -> {
      if (tensor.name().equals(GATE_UP + "_scales")) {
        out.add(new Entry(new TensorSpec(tensor.name(), DType.U8, 8, 192, 2), new byte[8 * 192 * 2]));
      } else {
        QuantizedFixtures.keep(tensor, bytes, out);
      }
    });
    assertOpenFails(archive).hasMessage(
        "Invalid model archive " + archive + ": MXFP4 scales '" + GATE_UP + "_scales' are U8[8, 192, 2] but blocks '" + GATE_UP
            + "_blocks' [8, 192, 4, 16] need U8[8, 192, 4]");
  }

  @Test
  void mxfp4NanExponentFailsWhenRead() throws IOException {
    Path archive = mxfp4((tensor, bytes, out) -> {
      if (tensor.name().equals(GATE_UP + "_scales")) {
        bytes[3 * 192 * 4 + 5 * 4 + 2] = (byte) 0xFF;
      }
      QuantizedFixtures.keep(tensor, bytes, out);
    });
    ModelArchive opened = ModelArchive.open(new LocalFileIO(), archive.toString());
    try (ArchiveReader reader = new ArchiveReader(opened)) {
      assertThat(reader.readRows(GATE_UP, 2, 1)).hasSize(128 * 192);
      assertThatThrownBy(() -> reader.readRows(GATE_UP, 3, 1))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Invalid model archive " + archive + ": MXFP4 scales '" + GATE_UP + "_scales' hold the NaN exponent 0xFF at [3, 5, 2]");
    }
  }

  private static QuantizedFixtures.Editor dropping(String name) {
    return (TensorInfo tensor, byte[] bytes, List<Entry> out) -> {
      if (!tensor.name().equals(name)) {
        QuantizedFixtures.keep(tensor, bytes, out);
      }
    };
  }
}
