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
    int[] starts = starts(new SplittableRandom(seed), corpus.length, nsamples, seqlen);
    int[][] samples = new int[nsamples][];
    for (int i = 0; i < nsamples; i++) {
      samples[i] = Arrays.copyOfRange(corpus, starts[i], starts[i] + seqlen);
    }
    return samples;
  }

  /** The calibration windows' offsets in the tokenized text, in draw order. */
  private static int[] starts(SplittableRandom random, int tokens, int nsamples, int seqlen) {
    int[] starts = new int[nsamples];
    for (int i = 0; i < nsamples; i++) {
      starts[i] = random.nextInt(tokens - seqlen + 1);
    }
    return starts;
  }

  /**
   * {@code count} held-out windows of the same text, sharing no token position with any of the
   * {@code nsamples} calibration windows {@link #sample} draws with the same seed: offsets drawn by
   * SplittableRandom(seed) split off after those draws, a draw overlapping a calibration window
   * (or an earlier held-out one) skipped, at most 64 draws per window. Pre-tokenized rows: the
   * {@code count} rows after the first {@code nsamples}. What the size budget scores candidates on.
   */
  public static int[][] heldOut(HadoopFileIO io, String location, Tokenizer tokenizer, int nsamples, int seqlen, long seed, int count)
      throws IOException {
    java.util.Optional<List<int[]>> pretokenized = TextSource.readTokenIds(io, location);
    if (pretokenized.isPresent()) {
      List<int[]> rows = pretokenized.get();
      ValidationException.check(rows.size() >= nsamples + count,
          "Cannot hold out %d windows of %s: it has %d input_ids rows, fewer than --nsamples %d plus those; give more rows or fewer --nsamples",
          count, location, rows.size(), nsamples);
      int[][] all = asGiven(location, rows, tokenizer.vocabSize(), nsamples + count, seqlen);
      return Arrays.copyOfRange(all, nsamples, nsamples + count);
    }
    int[] corpus = tokenizer.encode(String.join("\n\n", TextSource.read(io, location)), true);
    ValidationException.check(corpus.length >= seqlen,
        "Cannot calibrate on %s: it has %d tokens, fewer than one sample of --seqlen %d", location, corpus.length, seqlen);
    SplittableRandom random = new SplittableRandom(seed);
    List<Integer> taken = new java.util.ArrayList<>();
    for (int start : starts(random, corpus.length, nsamples, seqlen)) {
      taken.add(start);
    }
    SplittableRandom held = random.split();
    int[][] windows = new int[count][];
    int found = 0;
    for (int draw = 0; draw < 64 * count && found < count; draw++) {
      int start = held.nextInt(corpus.length - seqlen + 1);
      boolean overlaps = false;
      for (int other : taken) {
        overlaps |= Math.abs(other - start) < seqlen;
      }
      if (!overlaps) {
        taken.add(start);
        windows[found++] = Arrays.copyOfRange(corpus, start, start + seqlen);
      }
    }
    ValidationException.check(found == count,
        "Cannot hold out %d windows of %d tokens from %s apart from the %d calibration windows: the text is too short; give a longer"
            + " --calib, or fewer or shorter samples (--nsamples, --seqlen)", count, seqlen, location, nsamples);
    return windows;
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
