package dev.sparkprune.tensorio.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.tensorio.ValidationException;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.UnaryOperator;

/**
 * Hugging Face normalizers: Sequence, Prepend, Replace, NFC/NFKC/NFD/NFKD, Lowercase, Strip.
 * Anything else is refused with its name. A tokenizer.json is untrusted input, so a pipeline has
 * at most {@value #MAX_STEPS} steps, and normalizing may grow a text to at most {@value
 * #MAX_GROWTH} times its length plus {@value #GROWTH_SLACK} characters (real normalizers add a
 * prefix, swap spaces, or decompose a character into a few); a step that would grow it further
 * is refused before its result is built.
 */
final class Normalizers {
  /** Steps of a whole pipeline, nested Sequences included; real tokenizers have a handful. */
  static final int MAX_STEPS = 64;
  /** Normalized text may be this many times the input (NFKD of Hangul is 3x) ... */
  static final int MAX_GROWTH = 8;
  /** ... plus this many characters (Prepend of a short input). */
  static final int GROWTH_SLACK = 1024;

  private Normalizers() {}

  /** One normalizer, given the most characters its result may have. */
  private interface Step {
    String apply(String text, long limit);
  }

  static UnaryOperator<String> parse(String location, JsonNode node) {
    int[] steps = {0};
    Step step = parse(location, node, steps);
    if (step == null) {
      return UnaryOperator.identity();
    }
    return text -> step.apply(text, (long) MAX_GROWTH * text.length() + GROWTH_SLACK);
  }

  private static Step parse(String location, JsonNode node, int[] steps) {
    if (node == null || node.isMissingNode() || node.isNull()) {
      return null;
    }
    steps[0]++;
    ValidationException.check(steps[0] <= MAX_STEPS, "Invalid tokenizer %s: its normalizer has more than %d steps", location, MAX_STEPS);
    String type = node.path("type").asText();
    switch (type) {
      case "Sequence": {
        List<Step> children = new ArrayList<>();
        for (JsonNode child : node.path("normalizers")) {
          Step parsed = parse(location, child, steps);
          if (parsed != null) {
            children.add(parsed);
          }
        }
        return (text, limit) -> {
          String out = text;
          for (Step child : children) {
            out = child.apply(out, limit);
          }
          return out;
        };
      }
      case "Prepend": {
        String prepend = node.path("prepend").asText();
        return (text, limit) -> {
          if (text.isEmpty()) {
            return text;
          }
          checkGrowth(location, text.length(), (long) text.length() + prepend.length(), limit);
          return prepend + text;
        };
      }
      case "Replace": {
        String content = node.path("content").asText();
        JsonNode pattern = node.path("pattern");
        if (pattern.has("String")) {
          String target = pattern.get("String").asText();
          return (text, limit) -> {
            if (target.isEmpty()) {
              return text;
            }
            long matches = 0;
            for (int at = text.indexOf(target); at >= 0; at = text.indexOf(target, at + target.length())) {
              matches++;
            }
            checkGrowth(location, text.length(), text.length() + matches * (content.length() - target.length()), limit);
            return text.replace(target, content);
          };
        }
        ValidationException.check(pattern.has("Regex"), "Invalid Replace pattern %s in %s: expected String or Regex", pattern, location);
        Regex regex = Regex.compile(pattern.get("Regex").asText(), location);
        return (text, limit) -> replace(location, regex, text, content, limit);
      }
      case "NFC":
      case "NFKC":
      case "NFD":
      case "NFKD": {
        Normalizer.Form form = Normalizer.Form.valueOf(type);
        // Unicode bounds a decomposition (18 characters at most per character).
        return (text, limit) -> checked(location, text.length(), Normalizer.normalize(text, form), limit);
      }
      case "Lowercase":
        return (text, limit) -> checked(location, text.length(), text.toLowerCase(Locale.ROOT), limit);
      case "Strip": {
        boolean left = node.path("strip_left").asBoolean(true);
        boolean right = node.path("strip_right").asBoolean(true);
        return (text, limit) -> strip(text, left, right);
      }
      default:
        throw new ValidationException("Unsupported normalizer '" + type + "' in " + location);
    }
  }

  /** A regex Replace, its result's length computed from the matches before it is built. */
  private static String replace(String location, Regex regex, String text, String content, long limit) {
    List<int[]> spans = regex.find(text);
    if (spans.isEmpty()) {
      return text;
    }
    long length = text.length();
    for (int[] span : spans) {
      length += content.length() - (span[1] - span[0]);
    }
    checkGrowth(location, text.length(), length, limit);
    StringBuilder out = new StringBuilder((int) length);
    int last = 0;
    for (int[] span : spans) {
      out.append(text, last, span[0]).append(content);
      last = span[1];
    }
    return out.append(text, last, text.length()).toString();
  }

  private static String checked(String location, int input, String output, long limit) {
    checkGrowth(location, input, output.length(), limit);
    return output;
  }

  private static void checkGrowth(String location, long input, long output, long limit) {
    ValidationException.check(output <= limit,
        "Cannot normalize text with the tokenizer in %s: one of its normalizer steps turns %d characters into %d, over the limit of %d"
            + " (%d x the input + %d); its Replace or Prepend steps expand text without bound",
        location, input, output, limit, MAX_GROWTH, GROWTH_SLACK);
  }

  /** Strips Unicode White_Space (Rust's char::is_whitespace, which Java's strip() is not). */
  private static String strip(String text, boolean left, boolean right) {
    int start = 0;
    int end = text.length();
    while (left && start < end && AddedTokens.isWhitespace(text.charAt(start))) {
      start++;
    }
    while (right && end > start && AddedTokens.isWhitespace(text.charAt(end - 1))) {
      end--;
    }
    return text.substring(start, end);
  }
}
