package dev.sparkprune.tensorio.bench;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Tokenizes one text (the first {@code chars} characters of the given files, concatenated) on
 * one thread, in a single encode call as eval does and in one call per line as calibration
 * documents are; reports load time and tokens per second per pass. {@code tensor-io/src/test/node/tokenizer-bench.js} measures Hugging
 * Face's Node binding on the same text the same way.
 */
public final class TokenizeBenchmark {
  private TokenizeBenchmark() {}

  /** The benchmark text: the files concatenated with a newline between, cut to {@code chars}. */
  public static String text(List<Path> files, int chars) throws IOException {
    StringBuilder text = new StringBuilder();
    for (Path file : files) {
      text.append(Files.readString(file)).append('\n');
    }
    ValidationException.check(
        text.length() >= chars, "Cannot benchmark tokenization: %s hold %d characters, fewer than the %d asked for", files, text.length(),
        chars);
    return text.substring(0, chars);
  }

  /** Loads {@code tokenizer.json} (and its config) from {@code directory}; returns tokens/s per pass. */
  public static double[] run(Path directory, String text, int passes, PrintStream out) throws IOException {
    Path json = directory.resolve("tokenizer.json");
    ValidationException.check(Files.isRegularFile(json), "Invalid tokenizer folder %s: it has no tokenizer.json", directory);
    Path config = directory.resolve("tokenizer_config.json");
    long start = System.nanoTime();
    Tokenizer tokenizer = TokenizerLoader.parse(json.toString(), Files.readString(json), Files.isRegularFile(config) ? Files.readString(config) : "{}");
    out.printf(Locale.ROOT, "tokenize: %s loaded in %.2f s; %d characters%n",
        json, (System.nanoTime() - start) / 1e9, text.length());
    String[] lines = text.split("\n");
    double[] whole = passes(out, "one call", passes, () -> tokenizer.encode(text, false).length);
    passes(out, "one call per line (" + lines.length + " lines)", passes, () -> {
      int tokens = 0;
      for (String line : lines) {
        tokens += tokenizer.encode(line, false).length;
      }
      return tokens;
    });
    return whole;
  }

  private static double[] passes(PrintStream out, String mode, int passes, java.util.function.IntSupplier encode) {
    out.println("  " + mode + ":");
    double[] rates = new double[passes];
    // Two warm-up passes let the JIT compile the hot loops, as the Node side warms up once.
    for (int pass = -2; pass < passes; pass++) {
      long begin = System.nanoTime();
      int tokens = encode.getAsInt();
      double seconds = (System.nanoTime() - begin) / 1e9;
      if (pass >= 0) {
        rates[pass] = tokens / seconds;
        out.printf(Locale.ROOT, "    pass %d: %d tokens in %.3f s = %.0f tokens/s%n", pass + 1, tokens, seconds, rates[pass]);
      }
    }
    double[] sorted = rates.clone();
    Arrays.sort(sorted);
    out.printf(Locale.ROOT, "    median %.0f tokens/s, min %.0f, max %.0f over %d passes%n",
        sorted[sorted.length / 2], sorted[0], sorted[sorted.length - 1], passes);
    return rates;
  }
}
