package dev.sparkprune.tensorio.archive;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.ArchiveFiles;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SafetensorsWriter;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.TensorSpec;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/** Copies of the quantized fixtures with tensors or config changed, to build the cases under test. */
public final class QuantizedFixtures {
  private static final ObjectMapper JSON = new ObjectMapper();

  private QuantizedFixtures() {}

  /** A stored tensor to write: its header entry and bytes. */
  record Entry(TensorSpec spec, byte[] bytes) {}

  /** Rewrites each stored tensor; the editor may change, drop or add entries. */
  interface Editor {
    void edit(TensorInfo source, byte[] bytes, List<Entry> out);
  }

  /** {@code source}'s archive copied to {@code target}, tensors through {@code editor}, config through {@code config}. */
  static Path copy(Path source, Path target, Editor editor, Consumer<ObjectNode> config) throws IOException {
    ArchiveFiles.copyNonWeightFiles(source, target);
    ObjectNode root = (ObjectNode) JSON.readTree(Files.readString(source.resolve("config.json")));
    config.accept(root);
    Files.writeString(target.resolve("config.json"), JSON.writeValueAsString(root));
    List<Entry> entries = new ArrayList<>();
    try (SafetensorsReader reader = SafetensorsReader.open(new LocalFileIO().newInputFile(source.resolve("model.safetensors").toString()))) {
      for (TensorInfo tensor : reader.tensors()) {
        editor.edit(tensor, reader.readRawRows(tensor, 0, (int) tensor.rows()), entries);
      }
    }
    write(target.resolve("model.safetensors"), entries);
    return target;
  }

  static void write(Path file, List<Entry> entries) throws IOException {
    List<TensorSpec> specs = entries.stream().map(Entry::spec).toList();
    try (OutputStream out = Files.newOutputStream(file); SafetensorsWriter writer = SafetensorsWriter.create(out, specs, java.util.Map.of())) {
      for (Entry entry : entries) {
        writer.writeBytes(entry.bytes(), 0, entry.bytes().length);
      }
    }
  }

  /**
   * {@code source} (a plain archive) with every 2-D linear weight of its blocks but the router
   * stored as the FP8 release stores it: F8_E4M3 codes and 128x128 F32 scales by the release
   * rule, and {@code quantization_config} fp8.
   */
  public static Path toFp8(Path source, Path target) throws IOException {
    return copy(source, target, (tensor, bytes, out) -> {
      boolean linear = tensor.rank() == 2 && tensor.name().contains("layers.") && tensor.name().endsWith("proj.weight")
          || tensor.name().matches(".*experts\\.\\d+\\.w\\d\\.weight");
      if (!linear) {
        keep(tensor, bytes, out);
        return;
      }
      float[] values = new float[(int) tensor.numel()];
      dev.sparkprune.tensorio.TensorCodec.decode(tensor.dtype(), bytes, 0, values, 0, values.length);
      dev.sparkprune.tensorio.quant.Fp8Blocks.Quantized quantized = dev.sparkprune.tensorio.quant.Fp8Blocks.quantize(
          tensor.name(), values, (int) tensor.dim(0), (int) tensor.dim(1), dev.sparkprune.tensorio.quant.Quantization.ScaleFormat.FLOAT);
      out.add(new Entry(new TensorSpec(tensor.name(), dev.sparkprune.tensorio.DType.F8_E4M3, tensor.shape()), quantized.codes()));
      byte[] scales = new byte[quantized.scales().length * 4];
      dev.sparkprune.tensorio.TensorCodec.encode(dev.sparkprune.tensorio.DType.F32, quantized.scales(), 0, scales, 0, quantized.scales().length);
      out.add(new Entry(new TensorSpec(tensor.name() + "_scale_inv", dev.sparkprune.tensorio.DType.F32,
          dev.sparkprune.tensorio.quant.Fp8Blocks.blocks(tensor.dim(0)), dev.sparkprune.tensorio.quant.Fp8Blocks.blocks(tensor.dim(1))), scales));
    }, config -> {
      ObjectNode quantization = config.putObject("quantization_config");
      quantization.put("quant_method", "fp8").put("fmt", "e4m3").put("activation_scheme", "dynamic");
      quantization.putArray("weight_block_size").add(128).add(128);
    });
  }

  /**
   * {@code source} with every logical tensor written plain as F32, exactly as {@link ArchiveReader}
   * dequantizes it, and no quantization_config: the float twin a quantized archive must behave as.
   */
  public static Path dequantized(Path source, Path target) throws IOException {
    ArchiveFiles.copyNonWeightFiles(source, target);
    ObjectNode root = (ObjectNode) JSON.readTree(Files.readString(source.resolve("config.json")));
    root.remove("quantization_config");
    Files.writeString(target.resolve("config.json"), JSON.writeValueAsString(root));
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), source.toString());
    List<Entry> entries = new ArrayList<>();
    try (ArchiveReader reader = new ArchiveReader(archive)) {
      for (ArchiveTensor tensor : archive.tensors()) {
        float[] values = reader.readFloats(tensor);
        byte[] bytes = new byte[values.length * 4];
        dev.sparkprune.tensorio.TensorCodec.encode(dev.sparkprune.tensorio.DType.F32, values, 0, bytes, 0, values.length);
        entries.add(new Entry(new TensorSpec(tensor.name(), dev.sparkprune.tensorio.DType.F32, tensor.shape()), bytes));
      }
    }
    write(target.resolve("model.safetensors"), entries);
    return target;
  }

  /** Keeps every tensor as it is. */
  static void keep(TensorInfo source, byte[] bytes, List<Entry> out) {
    out.add(new Entry(TensorSpec.of(source), bytes));
  }
}
