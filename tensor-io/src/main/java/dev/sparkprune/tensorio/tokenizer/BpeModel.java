package dev.sparkprune.tensorio.tokenizer;

import dev.sparkprune.tensorio.ValidationException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BPE model of a Hugging Face tokenizer: a word to its initial symbols (characters, bytes
 * for byte-level vocabularies, {@code <0xNN>} or {@code <unk>} for characters outside the
 * vocabulary), then merged by rank. Words are cached. SentencePiece-style words (a whole text
 * when there is no pre-tokenizer) are first cut before each "▁" that no merge can cross: no
 * merge result holds "x▁" for the character x in front of it, so no symbol ever spans the cut
 * and the pieces merge exactly as the whole would, in O(piece) instead of one huge word.
 */
final class BpeModel {
  /** Words longer than this are not cached (HF's cache has the same kind of bound). */
  private static final int CACHED_LENGTH = 256;
  private static final int CACHE_ENTRIES = 1 << 18;

  private final Map<String, Integer> vocab;
  private final BpeMerger merger;
  private final boolean byteLevel;
  private final boolean byteFallback;
  private final int unkId;
  private final boolean fuseUnk;
  private final boolean ignoreMerges;
  /** Ids of single-character tokens by UTF-16 unit (-1: none); byte ids for byte-level. */
  private final int[] charIds;
  private final int[] byteIds;
  /** The characters x for which some merge result contains "x▁"; empty set disables cutting. */
  private final boolean[] crossesCut;
  private final boolean cutAtMetaspace;
  private final Map<String, int[]> cache = new ConcurrentHashMap<>();

  BpeModel(Map<String, Integer> vocab, BpeMerger merger, boolean byteLevel, boolean byteFallback, int unkId,
      boolean fuseUnk, boolean ignoreMerges, boolean[] crossesCut, boolean cutAtMetaspace) {
    this.vocab = vocab;
    this.merger = merger;
    this.byteLevel = byteLevel;
    this.byteFallback = byteFallback;
    this.unkId = unkId;
    this.fuseUnk = fuseUnk;
    this.ignoreMerges = ignoreMerges;
    this.crossesCut = crossesCut;
    this.cutAtMetaspace = cutAtMetaspace && !byteLevel;
    charIds = new int[Character.MAX_VALUE + 1];
    Arrays.fill(charIds, -1);
    vocab.forEach((token, id) -> {
      if (token.length() == 1) {
        charIds[token.charAt(0)] = id;
      }
    });
    byteIds = new int[256];
    for (int b = 0; b < 256; b++) {
      byteIds[b] = byteLevel ? vocab.getOrDefault(String.valueOf(ByteLevel.symbol(b)), -1) : -1;
    }
  }

  /** Appends the ids of one pre-tokenized word. */
  void encode(String word, BpeTokenizer.IntList out) {
    if (cutAtMetaspace) {
      // The pieces are cached, not the (whole-line) word: lines rarely repeat, pieces do.
      out.addAll(encodeCut(word));
      return;
    }
    int[] cached = word.length() <= CACHED_LENGTH ? cache.get(word) : null;
    if (cached != null) {
      out.addAll(cached);
      return;
    }
    int[] ids = encodeWhole(word);
    if (word.length() <= CACHED_LENGTH) {
      if (cache.size() >= CACHE_ENTRIES) {
        cache.clear();
      }
      cache.put(word, ids);
    }
    out.addAll(ids);
  }

  private int[] encodeCut(String word) {
    BpeTokenizer.IntList ids = new BpeTokenizer.IntList();
    int start = 0;
    for (int i = 1; i <= word.length(); i++) {
      if (i == word.length() || word.charAt(i) == '\u2581' && !crossesCut[word.charAt(i - 1)]) {
        String piece = word.substring(start, i);
        int[] cached = i - start <= CACHED_LENGTH ? cache.get(piece) : null;
        if (cached == null) {
          cached = encodeWhole(piece);
          if (i - start <= CACHED_LENGTH && cache.size() < CACHE_ENTRIES) {
            cache.put(piece, cached);
          }
        }
        ids.addAll(cached);
        start = i;
      }
    }
    return ids.toArray();
  }

  private int[] encodeWhole(String word) {
    if (byteLevel) {
      byte[] bytes = word.getBytes(StandardCharsets.UTF_8);
      if (ignoreMerges) {
        Integer whole = vocab.get(ByteLevel.encode(bytes));
        if (whole != null) {
          return new int[] {whole};
        }
      }
      int[] initial = new int[bytes.length];
      for (int i = 0; i < bytes.length; i++) {
        initial[i] = byteIds[bytes[i] & 0xFF];
        ValidationException.check(initial[i] >= 0, "Invalid tokenizer: byte-level vocabulary lacks byte 0x%02X", bytes[i] & 0xFF);
      }
      return merger.merge(initial);
    }
    if (ignoreMerges) {
      Integer whole = vocab.get(word);
      if (whole != null) {
        return new int[] {whole};
      }
    }
    BpeTokenizer.IntList initial = new BpeTokenizer.IntList();
    for (int i = 0; i < word.length(); ) {
      int codePoint = word.codePointAt(i);
      int count = Character.charCount(codePoint);
      int id = count == 1 ? charIds[word.charAt(i)] : vocab.getOrDefault(word.substring(i, i + count), -1);
      if (id >= 0) {
        initial.add(id);
      } else if (byteFallback) {
        for (byte b : word.substring(i, i + count).getBytes(StandardCharsets.UTF_8)) {
          Integer byteId = vocab.get(String.format("<0x%02X>", b & 0xFF));
          ValidationException.check(byteId != null, "Invalid tokenizer: byte_fallback is on but <0x%02X> is not in the vocabulary", b & 0xFF);
          initial.add(byteId);
        }
      } else {
        ValidationException.check(unkId >= 0, "Cannot tokenize character U+%04X: not in the vocabulary and no unk_token", codePoint);
        if (!fuseUnk || initial.size() == 0 || initial.last() != unkId) {
          initial.add(unkId);
        }
      }
      i += count;
    }
    return merger.merge(initial.toArray());
  }
}
