package dev.sparkprune.scoring.grad;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The autograd references {@code bin/setup-torch-reference} writes into
 * {@code .torch-reference/expected/} (scoring/src/test/python/grad_reference.py: Hugging Face
 * transformers in float64 with torch.autograd). Tests that need them skip with a message where
 * the script has not run.
 */
final class TorchReference implements AutoCloseable {
  static final String FOLDER = ".torch-reference/expected";

  private final SafetensorsReader reader;

  private TorchReference(SafetensorsReader reader) {
    this.reader = reader;
  }

  /** The expected folder, found from the module or the repository root. */
  static Optional<Path> folder() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      Path candidate = dir.resolve(FOLDER);
      if (Files.isRegularFile(candidate.resolve("manifest.json"))) {
        return Optional.of(candidate);
      }
    }
    return Optional.empty();
  }

  static Path require() {
    Optional<Path> folder = folder();
    assumeTrue(folder.isPresent(), "the PyTorch autograd reference is absent: run bin/setup-torch-reference (needs python3 with venv)");
    return folder.get();
  }

  static TorchReference open(String name) {
    Path file = require().resolve(name + ".safetensors");
    assumeTrue(Files.isRegularFile(file), () -> file + " is absent: run bin/setup-torch-reference again");
    try {
      return new TorchReference(SafetensorsReader.open(new LocalFileIO().newInputFile(file.toString())));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A random model of a family without a fixture, saved by the reference script. */
  static Path model(String name) {
    Path path = require().resolve("models").resolve(name);
    assumeTrue(Files.isDirectory(path), () -> path + " is absent: run bin/setup-torch-reference again");
    return path;
  }

  boolean contains(String tensor) {
    return reader.contains(tensor);
  }

  java.util.List<String> names() {
    return reader.tensors().stream().map(TensorInfo::name).toList();
  }

  int[][] tokens() throws IOException {
    TensorInfo info = reader.tensor("tokens");
    int sequences = (int) info.dim(0);
    int length = (int) info.dim(1);
    ByteBuffer bytes = ByteBuffer.wrap(reader.readRawRows(info, 0, sequences)).order(ByteOrder.LITTLE_ENDIAN);
    int[][] tokens = new int[sequences][length];
    for (int[] sequence : tokens) {
      for (int t = 0; t < length; t++) {
        sequence[t] = bytes.getInt();
      }
    }
    return tokens;
  }

  /** A tensor as double (F64 or F32). */
  double[] doubles(String tensor) throws IOException {
    TensorInfo info = reader.tensor(tensor);
    ByteBuffer bytes = ByteBuffer.wrap(reader.readRawRows(info, 0, (int) info.dim(0))).order(ByteOrder.LITTLE_ENDIAN);
    double[] values = new double[(int) info.numel()];
    for (int i = 0; i < values.length; i++) {
      values[i] = info.dtype() == dev.sparkprune.tensorio.DType.F64 ? bytes.getDouble() : bytes.getFloat();
    }
    return values;
  }

  float[] floats(String tensor) throws IOException {
    return reader.readFloats(tensor);
  }

  byte[] bytes(String tensor) throws IOException {
    TensorInfo info = reader.tensor(tensor);
    return reader.readRawRows(info, 0, (int) info.dim(0));
  }

  @Override
  public void close() throws IOException {
    reader.close();
  }
}
