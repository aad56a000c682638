package dev.sparkprune.jobs.text;

import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import java.io.IOException;
import java.util.Arrays;

/**
 * Token ids of a text source as the pruning papers make them (documents joined with a blank
 * line, tokenized once, BOS as the tokenizer asks), read only as far as a need: evaluating K
 * windows of a 100 MB file needs its first K x seqlen tokens, not the whole file tokenized.
 * The prefix read is cut just before a word (see {@link TextSource#readPrefix}); its ids equal
 * the whole text's except at the last word, so {@link #MARGIN} ids beyond the need are read
 * and dropped.
 */
public final class TextTokens {
  /** Ids read beyond the need and dropped, covering the last word of the prefix and EOS. */
  static final int MARGIN = 1024;

  /** Characters read per needed id at first; doubled until enough ids come out. */
  private static final int CHARS_PER_TOKEN = 8;

  private TextTokens() {}

  /** The ids, how many documents they came from, and whether the whole source was read. */
  public record Corpus(int[] ids, int documents, boolean complete) {}

  /** The first {@code needed} ids of the source (all of them if it has fewer, or for Long.MAX_VALUE). */
  public static Corpus tokenize(HadoopFileIO io, String location, Tokenizer tokenizer, long needed) throws IOException {
    long chars = needed >= TextSource.MAX_CHARS ? Long.MAX_VALUE : Math.max(1 << 16, CHARS_PER_TOKEN * (needed + MARGIN));
    while (true) {
      TextSource.Documents read = TextSource.readPrefix(io, location, chars);
      int[] ids = tokenizer.encode(String.join("\n\n", read.documents()), true);
      if (read.complete()) {
        return new Corpus(ids, read.documents().size(), true);
      }
      if (ids.length >= needed + MARGIN) {
        return new Corpus(Arrays.copyOf(ids, (int) needed), read.documents().size(), false);
      }
      chars = chars >= TextSource.MAX_CHARS ? Long.MAX_VALUE : 2 * chars;
    }
  }
}
