package dev.sparkprune.tensorio.tokenizer;

import dev.sparkprune.tensorio.ValidationException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * A Hugging Face BPE tokenizer, run as {@code tokenizers} runs it: added tokens found in the
 * raw text, the rest normalized, added tokens found in normalized text, pre-tokenized into
 * words, each word through the BPE model, then the post-processor's special tokens around it.
 * Covers SentencePiece-style files (Llama-2, Mistral, Gemma) and byte-level ones (GPT-2,
 * Llama-3, Qwen). Built by {@link TokenizerLoader}.
 */
public final class BpeTokenizer implements Tokenizer {
  private final String location;
  private final String[] tokens;
  private final BpeModel model;
  private final AddedTokens addedTokens;
  private final UnaryOperator<String> normalizer;
  private final PreTokenizers.PreTokenizer preTokenizer;
  private final UnaryOperator<List<String>> decoder;
  private final Set<Integer> specialIds;
  private final int[] prefix;
  private final int[] suffix;
  private final int bosId;
  private final int eosId;

  BpeTokenizer(
      String location,
      String[] tokens,
      BpeModel model,
      AddedTokens addedTokens,
      UnaryOperator<String> normalizer,
      PreTokenizers.PreTokenizer preTokenizer,
      UnaryOperator<List<String>> decoder,
      Set<Integer> specialIds,
      int[] prefix,
      int[] suffix,
      int bosId,
      int eosId) {
    this.location = location;
    this.tokens = tokens;
    this.model = model;
    this.addedTokens = addedTokens;
    this.normalizer = normalizer;
    this.preTokenizer = preTokenizer;
    this.decoder = decoder;
    this.specialIds = specialIds;
    this.prefix = prefix.clone();
    this.suffix = suffix.clone();
    this.bosId = bosId;
    this.eosId = eosId;
  }

  @Override
  public int vocabSize() {
    return tokens.length;
  }

  @Override
  public int bosId() {
    return bosId;
  }

  @Override
  public int eosId() {
    return eosId;
  }

  @Override
  public int[] encode(String text, boolean addSpecialTokens) {
    IntList ids = new IntList();
    if (addSpecialTokens) {
      ids.addAll(prefix);
    }
    for (AddedTokens.Segment raw : addedTokens.splitRaw(text)) {
      if (raw.id() >= 0) {
        ids.add(raw.id());
        continue;
      }
      if (raw.end() == raw.start()) {
        continue;
      }
      String normalized = normalizer.apply(text.substring(raw.start(), raw.end()));
      for (AddedTokens.Segment piece : addedTokens.splitNormalized(normalized)) {
        if (piece.id() >= 0) {
          ids.add(piece.id());
        } else if (piece.end() > piece.start()) {
          boolean atStart = raw.start() == 0 && piece.start() == 0;
          preTokenizer.split(normalized.substring(piece.start(), piece.end()), atStart, word -> model.encode(word, ids));
        }
      }
    }
    if (addSpecialTokens) {
      ids.addAll(suffix);
    }
    return ids.toArray();
  }

  @Override
  public String decode(int[] ids) {
    List<String> pieces = new ArrayList<>(ids.length);
    for (int id : ids) {
      ValidationException.check(
          id >= 0 && id < tokens.length, "Cannot decode token id %d: %s has %d tokens (ids 0 to %d)", id, location, tokens.length, tokens.length - 1);
      // Ids missing from a sparse vocabulary are dropped, as HF drops them.
      if (tokens[id] != null && !specialIds.contains(id)) {
        pieces.add(tokens[id]);
      }
    }
    return String.join("", decoder.apply(pieces));
  }

  /** GPT-2's printable stand-in for byte {@code b} in byte-level vocabularies. */
  public static char byteLevelSymbol(int b) {
    return ByteLevel.symbol(b);
  }

  /** A growable int array. */
  static final class IntList {
    private int[] values = new int[16];
    private int size;

    void add(int value) {
      if (size == values.length) {
        values = Arrays.copyOf(values, size * 2);
      }
      values[size++] = value;
    }

    void addAll(int[] more) {
      if (size + more.length > values.length) {
        values = Arrays.copyOf(values, Math.max(size * 2, size + more.length));
      }
      System.arraycopy(more, 0, values, size, more.length);
      size += more.length;
    }

    int size() {
      return size;
    }

    int last() {
      return values[size - 1];
    }

    int[] toArray() {
      return Arrays.copyOf(values, size);
    }
  }
}
