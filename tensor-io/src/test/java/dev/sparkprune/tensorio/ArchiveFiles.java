package dev.sparkprune.tensorio;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/** Test helpers that copy and rewrite archives on local disk to build the cases under test. */
public final class ArchiveFiles {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ArchiveFiles() {}

  /** Copies every non-weight file (config, tokenizer) of {@code source} into {@code target}. */
  public static void copyNonWeightFiles(Path source, Path target) throws IOException {
    Files.createDirectories(target);
    try (Stream<Path> files = Files.list(source)) {
      for (Path file : (Iterable<Path>) files::iterator) {
        String name = file.getFileName().toString();
        if (!name.endsWith(".safetensors") && !name.endsWith(".index.json")) {
          Files.copy(file, target.resolve(name));
        }
      }
    }
  }

  /**
   * Rewrites one safetensors file with tensors renamed by {@code rename}; a null name drops the
   * tensor. Data bytes are copied unchanged.
   */
  public static void rewrite(Path source, Path target, UnaryOperator<String> rename) throws IOException {
    Path temp = target.resolveSibling(target.getFileName() + ".tmp");
    try (SafetensorsReader reader = SafetensorsReader.open(new LocalFileIO().newInputFile(source.toString()))) {
      List<TensorInfo> kept = new ArrayList<>();
      List<TensorSpec> specs = new ArrayList<>();
      for (TensorInfo tensor : reader.tensors()) {
        String name = rename.apply(tensor.name());
        if (name != null) {
          kept.add(tensor);
          specs.add(new TensorSpec(name, tensor.dtype(), tensor.shape()));
        }
      }
      copyTensors(reader, kept, specs, temp);
    }
    Files.move(temp, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }

  /** Splits a single-file archive into {@code count} shards with an index, like HF's save_pretrained. */
  public static void reshard(Path sourceArchive, Path targetArchive, int count) throws IOException {
    copyNonWeightFiles(sourceArchive, targetArchive);
    try (SafetensorsReader reader =
        SafetensorsReader.open(new LocalFileIO().newInputFile(sourceArchive.resolve("model.safetensors").toString()))) {
      List<TensorInfo> tensors = reader.tensors();
      ObjectNode index = JSON.createObjectNode();
      index.putObject("metadata").put("total_size", tensors.stream().mapToLong(TensorInfo::byteLength).sum());
      ObjectNode weightMap = index.putObject("weight_map");
      int perShard = (tensors.size() + count - 1) / count;
      for (int s = 0; s < count; s++) {
        List<TensorInfo> part = tensors.subList(Math.min(tensors.size(), s * perShard), Math.min(tensors.size(), (s + 1) * perShard));
        String name = String.format("model-%05d-of-%05d.safetensors", s + 1, count);
        writeCopy(reader, part, targetArchive.resolve(name));
        part.forEach(tensor -> weightMap.put(tensor.name(), name));
      }
      Files.writeString(targetArchive.resolve("model.safetensors.index.json"), JSON.writeValueAsString(index));
    }
  }

  /** Writes {@code tensors} of {@code reader} to a new file, bytes unchanged. */
  public static void writeCopy(SafetensorsReader reader, List<TensorInfo> tensors, Path target) throws IOException {
    List<TensorSpec> specs = new ArrayList<>();
    tensors.forEach(tensor -> specs.add(TensorSpec.of(tensor)));
    copyTensors(reader, tensors, specs, target);
  }

  private static void copyTensors(SafetensorsReader reader, List<TensorInfo> tensors, List<TensorSpec> specs, Path target)
      throws IOException {
    try (OutputStream out = Files.newOutputStream(target);
        SafetensorsWriter writer = SafetensorsWriter.create(out, specs, reader.metadata())) {
      for (TensorInfo tensor : tensors) {
        byte[] bytes = reader.readRawRows(tensor, 0, (int) tensor.rows());
        writer.writeBytes(bytes, 0, bytes.length);
      }
    }
  }
}
