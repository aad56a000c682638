package dev.sparkprune.tensorio.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.tensorio.ValidationException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * Hugging Face pre-tokenizers: they split normalized text into words that BPE never merges
 * across. Supported: Split (all five behaviours, invert), ByteLevel, Metaspace, Digits, and
 * Sequence of them; anything else is refused with its name.
 */
final class PreTokenizers {
  /** GPT-2's split regex, used by ByteLevel with use_regex. */
  static final String GPT2_PATTERN =
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

  /** How a Split keeps its matches (HF's SplitDelimiterBehavior). */
  enum Behavior {
    REMOVED,
    ISOLATED,
    MERGED_WITH_PREVIOUS,
    MERGED_WITH_NEXT,
    CONTIGUOUS
  }

  /**
   * Splits one piece of text into words, streamed to {@code words} so a whole document never
   * becomes a list of half a million strings; {@code atStart}: the piece begins the original
   * text (Metaspace "first").
   */
  interface PreTokenizer {
    void split(String text, boolean atStart, Consumer<String> words);

    /** The words as a list (tests and small texts). */
    default List<String> split(String text, boolean atStart) {
      List<String> words = new ArrayList<>();
      split(text, atStart, words::add);
      return words;
    }
  }

  private PreTokenizers() {}

  static PreTokenizer none() {
    return (text, atStart, words) -> {
      if (!text.isEmpty()) {
        words.accept(text);
      }
    };
  }

  static PreTokenizer parse(String location, JsonNode node) {
    if (node == null || node.isMissingNode() || node.isNull()) {
      return none();
    }
    String type = node.path("type").asText();
    switch (type) {
      case "Sequence": {
        List<PreTokenizer> steps = new ArrayList<>();
        node.path("pretokenizers").forEach(child -> steps.add(parse(location, child)));
        return (text, atStart, words) -> {
          // Each step feeds the next; only the first word a step receives keeps atStart.
          Consumer<String> sink = words;
          for (int i = steps.size() - 1; i >= 0; i--) {
            PreTokenizer step = steps.get(i);
            Consumer<String> next = sink;
            boolean[] first = {atStart};
            sink = word -> {
              boolean start = first[0];
              first[0] = false;
              step.split(word, start, next);
            };
          }
          if (!text.isEmpty()) {
            sink.accept(text);
          }
        };
      }
      case "ByteLevel": {
        boolean prefixSpace = node.path("add_prefix_space").asBoolean(false);
        boolean useRegex = node.path("use_regex").asBoolean(true);
        Regex gpt2 = Regex.compile(GPT2_PATTERN, location);
        return (text, atStart, words) -> {
          String prefixed = prefixSpace && !text.startsWith(" ") ? " " + text : text;
          if (useRegex) {
            split(gpt2, prefixed, Behavior.ISOLATED, false, words);
          } else if (!prefixed.isEmpty()) {
            words.accept(prefixed);
          }
        };
      }
      case "Split": {
        JsonNode pattern = node.path("pattern");
        Regex regex = pattern.has("String")
            ? Regex.literal(pattern.get("String").asText(), location)
            : Regex.compile(requireRegex(location, pattern), location);
        Behavior behavior = behavior(location, node.path("behavior").asText("Isolated"));
        boolean invert = node.path("invert").asBoolean(false);
        return (text, atStart, words) -> split(regex, text, behavior, invert, words);
      }
      case "Digits": {
        // Rust's char::is_numeric: the N categories; runs merged unless individual_digits.
        Regex digit = Regex.compile("\\p{N}", location);
        Behavior behavior = node.path("individual_digits").asBoolean(false) ? Behavior.ISOLATED : Behavior.CONTIGUOUS;
        return (text, atStart, words) -> split(digit, text, behavior, false, words);
      }
      case "Metaspace":
        return metaspace(location, node);
      default:
        throw new ValidationException("Unsupported pre-tokenizer '" + type + "' in " + location);
    }
  }

  private static PreTokenizer metaspace(String location, JsonNode node) {
    String replacement = node.path("replacement").asText("\u2581");
    String scheme = node.has("prepend_scheme")
        ? node.get("prepend_scheme").asText()
        : node.path("add_prefix_space").asBoolean(true) ? "always" : "never";
    ValidationException.check(
        scheme.equals("always") || scheme.equals("first") || scheme.equals("never"),
        "Invalid Metaspace prepend_scheme '%s' in %s: expected always, first or never",
        scheme,
        location);
    boolean splitWords = node.path("split").asBoolean(true);
    Regex delimiter = Regex.literal(replacement, location);
    return (text, atStart, words) -> {
      String replaced = text.replace(" ", replacement);
      boolean prepend = scheme.equals("always") || scheme.equals("first") && atStart;
      if (prepend && !replaced.startsWith(replacement)) {
        replaced = replacement + replaced;
      }
      if (splitWords) {
        split(delimiter, replaced, Behavior.MERGED_WITH_NEXT, false, words);
      } else if (!replaced.isEmpty()) {
        words.accept(replaced);
      }
    };
  }

  private static String requireRegex(String location, JsonNode pattern) {
    ValidationException.check(pattern.has("Regex"), "Invalid Split pattern %s in %s: expected String or Regex", pattern, location);
    return pattern.get("Regex").asText();
  }

  private static Behavior behavior(String location, String name) {
    switch (name) {
      case "Removed":
        return Behavior.REMOVED;
      case "Isolated":
        return Behavior.ISOLATED;
      case "MergedWithPrevious":
        return Behavior.MERGED_WITH_PREVIOUS;
      case "MergedWithNext":
        return Behavior.MERGED_WITH_NEXT;
      case "Contiguous":
        return Behavior.CONTIGUOUS;
      default:
        throw new ValidationException(String.format(Locale.ROOT,
            "Invalid Split behavior '%s' in %s: expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous",
            name, location));
    }
  }

  /**
   * HF's {@code NormalizedString::split}: the text as alternating match / non-match pieces
   * (flags flipped by {@code invert}), combined by the behaviour; empty pieces are dropped.
   */
  static void split(Regex regex, String text, Behavior behavior, boolean invert, Consumer<String> words) {
    if (text.isEmpty()) {
      return;
    }
    if (behavior == Behavior.ISOLATED) {
      // Every piece is a word whatever its flag: stream them (byte-level tokenizers' hot path).
      int[] previous = {0};
      regex.find(text, (start, end) -> {
        if (start > previous[0]) {
          words.accept(text.substring(previous[0], start));
        }
        if (end > start) {
          words.accept(text.substring(start, end));
        }
        previous[0] = end;
      });
      if (previous[0] < text.length()) {
        words.accept(text.substring(previous[0]));
      }
      return;
    }
    // Pieces as {start, end, isMatch}.
    List<int[]> pieces = new ArrayList<>();
    int previous = 0;
    for (int[] span : regex.find(text)) {
      if (span[0] > previous) {
        pieces.add(new int[] {previous, span[0], invert ? 1 : 0});
      }
      pieces.add(new int[] {span[0], span[1], invert ? 0 : 1});
      previous = span[1];
    }
    if (previous < text.length()) {
      pieces.add(new int[] {previous, text.length(), invert ? 1 : 0});
    }
    for (int[] piece : combine(pieces, behavior)) {
      if (piece[1] > piece[0]) {
        words.accept(text.substring(piece[0], piece[1]));
      }
    }
  }

  private static List<int[]> combine(List<int[]> pieces, Behavior behavior) {
    List<int[]> out = new ArrayList<>(pieces.size());
    boolean previousMatch = false;
    switch (behavior) {
      case REMOVED:
        pieces.stream().filter(piece -> piece[2] == 0).forEach(out::add);
        return out;
      case ISOLATED:
        return pieces;
      case MERGED_WITH_PREVIOUS:
        // A match joins the piece before it unless that piece is itself a match.
        for (int[] piece : pieces) {
          boolean match = piece[2] == 1;
          if (match && !previousMatch && !out.isEmpty()) {
            out.get(out.size() - 1)[1] = piece[1];
          } else {
            out.add(piece.clone());
          }
          previousMatch = match;
        }
        return out;
      case MERGED_WITH_NEXT:
        // Mirror image, walked right to left: a match joins the piece after it.
        for (int i = pieces.size() - 1; i >= 0; i--) {
          int[] piece = pieces.get(i);
          boolean match = piece[2] == 1;
          if (match && !previousMatch && !out.isEmpty()) {
            out.get(out.size() - 1)[0] = piece[0];
          } else {
            out.add(piece.clone());
          }
          previousMatch = match;
        }
        java.util.Collections.reverse(out);
        return out;
      case CONTIGUOUS:
        // Runs of pieces with the same flag become one.
        for (int[] piece : pieces) {
          boolean match = piece[2] == 1;
          if (match == previousMatch && !out.isEmpty()) {
            out.get(out.size() - 1)[1] = piece[1];
          } else {
            out.add(piece.clone());
          }
          previousMatch = match;
        }
        return out;
      default:
        throw new IllegalStateException(behavior.name());
    }
  }
}
