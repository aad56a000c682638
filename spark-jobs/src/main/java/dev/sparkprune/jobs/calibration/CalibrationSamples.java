package dev.sparkprune.jobs.calibration;

import dev.sparkprune.jobs.text.TextSource;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Calibration samples: the documents are joined with a blank line and tokenized once with the
 * archive's tokenizer (BOS included), then {@code nsamples} windows of {@code seqlen} tokens
 * start at offsets drawn uniformly from [0, tokens - seqlen] by SplittableRandom(seed), in
 * draw order. The same text, seed and sizes give the same samples on any cluster. A JSONL or
 * Parquet source whose records carry {@code input_ids} is pre-tokenized and used as given.
 */
public final class CalibrationSamples {
  private CalibrationSamples() {}

  public static int[][] sample(HadoopFileIO io, String location, Tokenizer tokenizer, int nsamples, int seqlen, long seed) throws IOException {
    java.util.Optional<List<int[]>> pretokenized = TextSource.readTokenIds(io, location);
    if (pretokenized.isPresent()) {
      return asGiven(location, pretokenized.get(), tokenizer.vocabSize(), nsamples, seqlen);
    }
    List<String> documents = TextSource.read(io, location);
    int[] corpus = tokenizer.encode(String.join("\n\n", documents), true);
    ValidationException.check(
        corpus.length >= seqlen,
        "Cannot calibrate on %s: it has %d tokens, fewer than one sample of --seqlen %d",
        location,
        corpus.length,
        seqlen);
    SplittableRandom random = new SplittableRandom(seed);
    int[][] samples = new int[nsamples][];
    for (int i = 0; i < nsamples; i++) {
      int start = random.nextInt(corpus.length - seqlen + 1);
      samples[i] = Arrays.copyOfRange(corpus, start, start + seqlen);
    }
    return samples;
  }

  /**
   * Pre-tokenized samples ({@code input_ids} rows) are used exactly as given: the first
   * {@code nsamples} rows, in order, each exactly {@code seqlen} ids within the vocabulary.
   */
  private static int[][] asGiven(String location, List<int[]> rows, int vocab, int nsamples, int seqlen) {
    ValidationException.check(
        rows.size() >= nsamples, "Cannot calibrate on %s: it has %d input_ids rows, fewer than --nsamples %d", location, rows.size(), nsamples);
    int[][] samples = new int[nsamples][];
    for (int i = 0; i < nsamples; i++) {
      int[] row = rows.get(i);
      ValidationException.check(
          row.length == seqlen, "Invalid calibration row %d of %s: %d input_ids, expected --seqlen %d", i, location, row.length, seqlen);
      for (int t = 0; t < row.length; t++) {
        ValidationException.check(
            row[t] >= 0 && row[t] < vocab, "Invalid calibration row %d of %s: token id %d at %d is outside the vocabulary of %d", i, location,
            row[t], t, vocab);
      }
      samples[i] = row;
    }
    return samples;
  }
}
