package dev.sparkprune.tensorio.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * Added tokens ({@code <s>}, {@code <|eot_id|>}, Gemma's 6,415 others) found in text as Hugging
 * Face's {@code AddedVocabulary} finds them: one left-to-right pass over a trie, leftmost-longest
 * and without overlap, so the cost is linear in the text whatever the number of tokens. Tokens
 * with {@code normalized: false} are matched in the raw text, the others in normalized text;
 * {@code single_word}, {@code lstrip} and {@code rstrip} then apply to each match.
 */
final class AddedTokens {
  /** One added token with its matching options. */
  record Token(String content, int id, boolean special, boolean singleWord, boolean lstrip, boolean rstrip, boolean normalized) {}

  /** A piece of text: a matched token ({@code id >= 0}) or plain text ({@code id == -1}). */
  record Segment(int start, int end, int id) {}

  private final Trie raw = new Trie();
  private final Trie normalized = new Trie();

  AddedTokens(List<Token> tokens, UnaryOperator<String> normalizer) {
    for (Token token : tokens) {
      if (token.content().isEmpty()) {
        continue;
      }
      if (token.normalized()) {
        // HF normalizes the token's own content before matching it in normalized text.
        normalized.add(normalizer.apply(token.content()), token);
      } else {
        raw.add(token.content(), token);
      }
    }
  }

  List<Segment> splitRaw(String text) {
    return raw.split(text);
  }

  List<Segment> splitNormalized(String text) {
    return normalized.split(text);
  }

  /** Rust's char::is_whitespace: the Unicode White_Space property. */
  static boolean isWhitespace(char c) {
    switch (c) {
      case ' ', '\t', '\n', '\u000b', '\f', '\r', '\u0085', '\u00a0', '\u1680', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000':
        return true;
      default:
        return c >= '\u2000' && c <= '\u200a';
    }
  }

  /** Rust's char::is_alphanumeric or '_', HF's test for a word character next to single_word tokens. */
  private static boolean isWordChar(int codePoint) {
    int type = Character.getType(codePoint);
    return codePoint == '_' || Character.isAlphabetic(codePoint)
        || type == Character.DECIMAL_DIGIT_NUMBER || type == Character.LETTER_NUMBER || type == Character.OTHER_NUMBER;
  }

  /** A character trie; a node's token is the added token that ends there, if any. */
  private static final class Trie {
    private final Node root = new Node();
    /** First characters of all tokens: most positions are rejected with one array read. */
    private final boolean[] first = new boolean[Character.MAX_VALUE + 1];
    private boolean empty = true;

    private static final class Node {
      final Map<Character, Node> children = new HashMap<>(4);
      Token token;
    }

    void add(String content, Token token) {
      Node node = root;
      for (int i = 0; i < content.length(); i++) {
        node = node.children.computeIfAbsent(content.charAt(i), c -> new Node());
      }
      // The first token listed with a content wins, as HF keeps the first id for a content.
      if (node.token == null) {
        node.token = token;
      }
      first[content.charAt(0)] = true;
      empty = false;
    }

    List<Segment> split(String text) {
      List<Segment> segments = new ArrayList<>();
      int n = text.length();
      int done = 0;
      int i = 0;
      while (!empty && i < n) {
        if (!first[text.charAt(i)]) {
          i++;
          continue;
        }
        Token match = null;
        int end = i;
        Node node = root;
        for (int j = i; j < n && (node = node.children.get(text.charAt(j))) != null; j++) {
          if (node.token != null) {
            match = node.token;
            end = j + 1;
          }
        }
        if (match == null) {
          i++;
          continue;
        }
        int start = i;
        // Like the Aho-Corasick iterator HF uses, the search resumes after a match even when
        // single_word then rejects it.
        i = end;
        if (match.singleWord()
            && (start > 0 && isWordChar(text.codePointBefore(start)) || end < n && isWordChar(text.codePointAt(end)))) {
          continue;
        }
        if (match.lstrip()) {
          while (start > done && isWhitespace(text.charAt(start - 1))) {
            start--;
          }
        }
        if (match.rstrip()) {
          while (end < n && isWhitespace(text.charAt(end))) {
            end++;
          }
          i = end;
        }
        if (start > done) {
          segments.add(new Segment(done, start, -1));
        }
        segments.add(new Segment(start, end, match.id()));
        done = end;
      }
      if (done < n || segments.isEmpty()) {
        segments.add(new Segment(done, n, -1));
      }
      return segments;
    }
  }
}
