package dev.sparkprune.tensorio.tokenizer;

import dev.sparkprune.tensorio.ValidationException;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * A Hugging Face BPE tokenizer, in its two families: SentencePiece-style (normalizer or
 * Metaspace turning spaces into "▁", byte fallback {@code <0xNN>} for characters outside the
 * vocabulary; Llama-2, Mistral, TinyLlama) and byte-level (GPT-2's byte-to-unicode map with a
 * split regex; GPT-2, Llama-3, Qwen2). Built by {@link TokenizerLoader}.
 */
public final class BpeTokenizer implements Tokenizer {
  private final Map<String, Integer> vocab;
  private final String[] tokens;
  private final BpeMerger merger;
  private final UnaryOperator<String> normalizer;
  private final PreTokenizer preTokenizer;
  private final boolean byteLevel;
  private final boolean byteFallback;
  private final int unkId;
  private final List<AddedToken> addedTokens;
  private final Set<Integer> specialIds;
  private final int bosId;
  private final int eosId;
  private final boolean addBos;
  private final boolean addEos;
  private final boolean stripLeadingSpace;
  private final boolean ignoreMerges;

  /** A token matched in the raw text before normalization (special tokens like {@code <s>}). */
  static final class AddedToken {
    final String content;
    final int id;

    AddedToken(String content, int id) {
      this.content = content;
      this.id = id;
    }
  }

  /** Splits normalized text into words; BPE never merges across words. */
  interface PreTokenizer {
    List<String> split(String text);
  }

  BpeTokenizer(
      Map<String, Integer> vocab,
      String[] tokens,
      BpeMerger merger,
      UnaryOperator<String> normalizer,
      PreTokenizer preTokenizer,
      boolean byteLevel,
      boolean byteFallback,
      int unkId,
      List<AddedToken> addedTokens,
      Set<Integer> specialIds,
      int bosId,
      int eosId,
      boolean addBos,
      boolean addEos,
      boolean stripLeadingSpace,
      boolean ignoreMerges) {
    this.vocab = vocab;
    this.tokens = tokens;
    this.merger = merger;
    this.normalizer = normalizer;
    this.preTokenizer = preTokenizer;
    this.byteLevel = byteLevel;
    this.byteFallback = byteFallback;
    this.unkId = unkId;
    this.addedTokens = addedTokens;
    this.specialIds = specialIds;
    this.bosId = bosId;
    this.eosId = eosId;
    this.addBos = addBos;
    this.addEos = addEos;
    this.stripLeadingSpace = stripLeadingSpace;
    this.ignoreMerges = ignoreMerges;
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
    if (addSpecialTokens && addBos && bosId >= 0) {
      ids.add(bosId);
    }
    int start = 0;
    while (start < text.length()) {
      int matchAt = text.length();
      AddedToken match = null;
      for (AddedToken added : addedTokens) {
        int at = text.indexOf(added.content, start);
        if (at >= 0 && (at < matchAt || at == matchAt && match != null && added.content.length() > match.content.length())) {
          matchAt = at;
          match = added;
        }
      }
      if (matchAt > start) {
        encodeText(text.substring(start, matchAt), ids);
      }
      if (match == null) {
        break;
      }
      ids.add(match.id);
      start = matchAt + match.content.length();
    }
    if (addSpecialTokens && addEos && eosId >= 0) {
      ids.add(eosId);
    }
    return ids.toArray();
  }

  private void encodeText(String text, IntList out) {
    for (String word : preTokenizer.split(normalizer.apply(text))) {
      String symbols = byteLevel ? ByteLevel.encode(word.getBytes(StandardCharsets.UTF_8)) : word;
      Integer whole = ignoreMerges ? vocab.get(symbols) : null;
      if (whole != null) {
        out.add(whole);
        continue;
      }
      IntList initial = new IntList();
      for (int i = 0; i < symbols.length(); ) {
        int codePoint = symbols.codePointAt(i);
        String symbol = new String(Character.toChars(codePoint));
        Integer id = vocab.get(symbol);
        if (id != null) {
          initial.add(id);
        } else if (byteFallback) {
          for (byte b : symbol.getBytes(StandardCharsets.UTF_8)) {
            Integer byteId = vocab.get(String.format("<0x%02X>", b & 0xFF));
            ValidationException.check(byteId != null, "Invalid tokenizer: byte_fallback is on but <0x%02X> is not in the vocabulary", b & 0xFF);
            initial.add(byteId);
          }
        } else {
          ValidationException.check(unkId >= 0, "Cannot tokenize character U+%04X: not in the vocabulary and no unk_token", codePoint);
          // fuse_unk: consecutive unknowns become one <unk>.
          if (initial.size() == 0 || initial.last() != unkId) {
            initial.add(unkId);
          }
        }
        i += Character.charCount(codePoint);
      }
      for (int id : merger.merge(initial.toArray())) {
        out.add(id);
      }
    }
  }

  @Override
  public String decode(int[] ids) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (int id : ids) {
      ValidationException.check(id >= 0 && id < tokens.length, "Cannot decode token id %d: vocabulary has %d tokens", id, tokens.length);
      if (specialIds.contains(id)) {
        continue;
      }
      String token = tokens[id];
      if (byteLevel) {
        byte[] decoded = ByteLevel.decode(token);
        bytes.write(decoded, 0, decoded.length);
      } else if (byteFallback && token.length() == 6 && token.startsWith("<0x") && token.endsWith(">")) {
        bytes.write(Integer.parseInt(token.substring(3, 5), 16));
      } else {
        byte[] utf8 = token.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
        bytes.write(utf8, 0, utf8.length);
      }
    }
    String text = new String(bytes.toByteArray(), StandardCharsets.UTF_8);
    return stripLeadingSpace && text.startsWith(" ") ? text.substring(1) : text;
  }

  /** A growable int array. */
  static final class IntList {
    private int[] values = new int[16];
    private int size;

    void add(int value) {
      if (size == values.length) {
        values = java.util.Arrays.copyOf(values, size * 2);
      }
      values[size++] = value;
    }

    int size() {
      return size;
    }

    int last() {
      return values[size - 1];
    }

    int[] toArray() {
      return java.util.Arrays.copyOf(values, size);
    }
  }

  /** GPT-2's printable stand-in for byte {@code b} in byte-level vocabularies. */
  public static char byteLevelSymbol(int b) {
    return ByteLevel.BYTE_TO_CHAR[b & 0xFF];
  }

  /** GPT-2's reversible map from bytes to printable unicode characters. */
  static final class ByteLevel {
    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
      java.util.Arrays.fill(CHAR_TO_BYTE, -1);
      int extra = 0;
      for (int b = 0; b < 256; b++) {
        boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        char c = printable ? (char) b : (char) (256 + extra++);
        BYTE_TO_CHAR[b] = c;
        CHAR_TO_BYTE[c] = b;
      }
    }

    private ByteLevel() {}

    static String encode(byte[] bytes) {
      char[] chars = new char[bytes.length];
      for (int i = 0; i < bytes.length; i++) {
        chars[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
      }
      return new String(chars);
    }

    static byte[] decode(String token) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      for (int i = 0; i < token.length(); i++) {
        char c = token.charAt(i);
        int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
        if (b >= 0) {
          out.write(b);
        } else {
          byte[] utf8 = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
          out.write(utf8, 0, utf8.length);
        }
      }
      return out.toByteArray();
    }
  }

  static List<String> single(String text) {
    List<String> words = new ArrayList<>(1);
    if (!text.isEmpty()) {
      words.add(text);
    }
    return words;
  }
}
