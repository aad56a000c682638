package dev.sparkprune.tensorio.archive;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.tensorio.ArchiveFiles;
import dev.sparkprune.tensorio.LlamaCppReference;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.quant.Quantization;
import dev.sparkprune.tensorio.quant.Requantization;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * llama.cpp's own converter reads what {@link SourceFormat} writes as the release format: the
 * DeepSeek-V3 FP8 fixture with every quantized weight half pruned and part of it moved (so both
 * masked blocks and re-quantized blocks are written) gives llama.cpp the same logits as the
 * same weights written as plain F32. Skips where {@code bin/setup-llamacpp-reference} has not run.
 */
class TestQuantizedLlamaCpp {
  @TempDir Path temp;

  @Test
  void llamaCppReadsPrunedAndRequantizedFp8AsTheFloatsMeant() throws IOException {
    LlamaCppReference.require();
    Path fixture = SharedData.path("fixtures/models/deepseek_v3_fp8");
    ModelArchive source = ModelArchive.open(new LocalFileIO(), fixture.toString());
    Path pruned = temp.resolve("pruned");
    ArchiveFiles.copyNonWeightFiles(fixture, pruned);
    List<TensorSpec> specs = new ArrayList<>();
    source.tensors().forEach(tensor -> specs.addAll(SourceFormat.specs(tensor)));
    long requantized = 0;
    try (ArchiveReader reader = new ArchiveReader(source);
        OutputStream out = Files.newOutputStream(pruned.resolve("model.safetensors"));
        SafetensorsWriter writer = SafetensorsWriter.create(out, specs, Map.of("format", "pt"))) {
      for (ArchiveTensor tensor : source.tensors()) {
        if (!tensor.isQuantized()) {
          SourceFormat.copy(reader, tensor, writer.dataStream());
          continue;
        }
        float[] values = reader.readFloats(tensor);
        int cols = (int) tensor.dim(1);
        for (int i = 0; i < values.length; i++) {
          // Half the weights pruned; in the first 128 rows the kept ones move (a weight update).
          values[i] = (i * 2654435761L >>> 7) % 2 == 0 ? 0f : i / cols < 128 ? values[i] * 1.05f : values[i];
        }
        Requantization written = SourceFormat.writeUpdated(reader, tensor, e -> values, Quantization.ScaleFormat.FLOAT, writer.dataStream());
        requantized += written.requantizedBlocks();
      }
    }
    assertThat(requantized).isPositive();
    Path twin = QuantizedFixtures.dequantized(pruned, temp.resolve("twin"));
    int[] tokens = Arrays.copyOf(ModelFixtures.goldenTokens("deepseek_v3_fp8"), 24);
    float[][] fp8 = LlamaCppReference.logits(pruned, tokens);
    float[][] floats = LlamaCppReference.logits(twin, tokens);
    double worst = 0;
    for (int t = 0; t < tokens.length; t++) {
      for (int v = 0; v < fp8[t].length; v++) {
        worst = Math.max(worst, Math.abs(fp8[t][v] - floats[t][v]));
      }
    }
    assertThat(worst).as("largest |logit(FP8 archive) - logit(F32 twin)| in llama.cpp").isLessThanOrEqualTo(1e-5);
  }
}
