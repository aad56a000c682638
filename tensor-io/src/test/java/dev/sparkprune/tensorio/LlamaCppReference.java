package dev.sparkprune.tensorio;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * llama.cpp as an independent reference for forward passes: a Hugging Face archive goes through
 * llama.cpp's own {@code convert_hf_to_gguf.py} to an F32 GGUF, and the {@code llamacpp-logits}
 * driver evaluates one sequence on it with llama.cpp's CPU backend. Nothing of sparkprune runs on
 * this path. {@code bin/setup-llamacpp-reference} installs it into {@code .llamacpp-reference/};
 * where it has not run, {@link #logits} skips the calling test with a message.
 */
public final class LlamaCppReference {
  static final String FOLDER = ".llamacpp-reference";
  private static final String DRIVER = "llamacpp-logits";
  private static final String BACKENDS = "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64";
  private static final String CONVERTER = "tensor-io/src/test/python/llamacpp_convert.py";
  private static final long TIMEOUT_MINUTES = 10;

  private LlamaCppReference() {}

  /** The installed reference folder, found from the module or the repository root. */
  static Optional<Path> folder() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      Path candidate = dir.resolve(FOLDER);
      if (Files.isExecutable(candidate.resolve(DRIVER)) && Files.isRegularFile(candidate.getParent().resolve(CONVERTER))) {
        return Optional.of(candidate);
      }
    }
    return Optional.empty();
  }

  public static boolean available() {
    return folder().isPresent();
  }

  /** Skips the calling test, saying how to install the reference, where it is absent. */
  public static Path require() {
    Optional<Path> folder = folder();
    assumeTrue(folder.isPresent(), "the llama.cpp reference is absent: run bin/setup-llamacpp-reference (needs node/npm, git, g++, python3)");
    return folder.get();
  }

  /**
   * llama.cpp's logits [tokens][vocab] for one causal sequence over the archive in {@code
   * hfArchiveDir}: {@link #convert} into a temporary folder, then {@link #evaluate}.
   */
  public static float[][] logits(Path hfArchiveDir, int[] tokens) throws IOException {
    require();
    Path work = Files.createTempDirectory("llamacpp-reference");
    try {
      return evaluate(convert(hfArchiveDir, work.resolve("model.gguf")), tokens);
    } finally {
      deleteRecursively(work);
    }
  }

  /**
   * Converts a Hugging Face archive with llama.cpp's converter to an F32 GGUF (no quantization
   * involved) and returns {@code gguf}.
   */
  public static Path convert(Path hfArchiveDir, Path gguf) throws IOException {
    Path folder = require();
    // A neutral model name: llama.cpp keys tokenizer quirks on names such as "phi3" (for
    // tokens our fixtures' stand-in vocabulary lacks); the logits never depend on it.
    run(gguf.toAbsolutePath().getParent(), "convert", folder.resolve("venv/bin/python").toString(),
        folder.getParent().resolve(CONVERTER).toString(), folder.resolve("llama.cpp").toString(),
        hfArchiveDir.toAbsolutePath().toString(), "--outtype", "f32", "--model-name", "sparkprune-reference",
        "--outfile", gguf.toAbsolutePath().toString());
    return gguf;
  }

  /** llama.cpp's logits [tokens][vocab] for one causal sequence over a GGUF file. */
  public static float[][] evaluate(Path gguf, int[] tokens) throws IOException {
    Path folder = require();
    if (tokens.length == 0) {
      throw new IllegalArgumentException("Cannot evaluate an empty sequence with llama.cpp: give at least one token id");
    }
    Path work = Files.createTempDirectory("llamacpp-evaluate");
    try {
      Path ids = work.resolve("tokens.txt");
      Files.writeString(ids, IntStream.of(tokens).mapToObj(Integer::toString).collect(Collectors.joining(" ")));
      Path out = work.resolve("logits.f32");
      String shape = run(work, "evaluate", folder.resolve(DRIVER).toString(), folder.resolve(BACKENDS).toString(),
          gguf.toAbsolutePath().toString(), ids.toString(), out.toString());
      return read(out, tokens.length, shape);
    } finally {
      deleteRecursively(work);
    }
  }

  /** The driver's output: little-endian float32 rows, one per token; shape "tokens vocab". */
  private static float[][] read(Path out, int tokens, String shape) throws IOException {
    String[] parts = shape.lines().reduce((first, last) -> last).orElse("").split(" ");
    int vocab = Integer.parseInt(parts[parts.length - 1]);
    long expected = (long) tokens * vocab * Float.BYTES;
    if (Files.size(out) != expected) {
      throw new IOException("Invalid llama.cpp logits file: " + Files.size(out) + " bytes, expected " + expected + " for " + tokens + " x " + vocab);
    }
    FloatBuffer floats = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    float[][] logits = new float[tokens][vocab];
    for (float[] row : logits) {
      floats.get(row);
    }
    return logits;
  }

  /** Runs one step in {@code work}; returns its standard output, or fails with the end of its log. */
  private static String run(Path work, String step, String... command) throws IOException {
    Path log = Files.createTempFile(work, step, ".log");
    Path stdout = Files.createTempFile(work, step, ".out");
    try {
      ProcessBuilder builder = new ProcessBuilder(command).directory(work.toFile())
          .redirectOutput(stdout.toFile()).redirectError(log.toFile());
      // The converter must never reach for a hub: everything it reads is in the archive.
      builder.environment().put("HF_HUB_OFFLINE", "1");
      builder.environment().put("PYTHONDONTWRITEBYTECODE", "1");
      int exit = waitFor(builder.start(), step);
      if (exit != 0) {
        List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        String tail = String.join("\n", lines.subList(Math.max(0, lines.size() - 5), lines.size()));
        throw new IOException("Cannot " + step + " with llama.cpp (exit " + exit + "):\n" + tail);
      }
      return Files.readString(stdout, StandardCharsets.UTF_8);
    } finally {
      Files.deleteIfExists(log);
      Files.deleteIfExists(stdout);
    }
  }

  private static int waitFor(Process process, String step) throws IOException {
    try {
      if (!process.waitFor(TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
        process.destroyForcibly();
        throw new IOException("Cannot " + step + " with llama.cpp: no result after " + TIMEOUT_MINUTES + " minutes");
      }
      return process.exitValue();
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("Cannot " + step + " with llama.cpp: interrupted", e);
    }
  }

  private static void deleteRecursively(Path root) throws IOException {
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(path -> {
        try {
          Files.delete(path);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
    }
  }
}
