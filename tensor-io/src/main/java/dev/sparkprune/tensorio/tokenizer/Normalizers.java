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
 * Anything else is refused with its name.
 */
final class Normalizers {
  private Normalizers() {}

  static UnaryOperator<String> parse(String location, JsonNode node) {
    if (node == null || node.isMissingNode() || node.isNull()) {
      return UnaryOperator.identity();
    }
    String type = node.path("type").asText();
    switch (type) {
      case "Sequence": {
        List<UnaryOperator<String>> steps = new ArrayList<>();
        node.path("normalizers").forEach(child -> steps.add(parse(location, child)));
        return text -> {
          String out = text;
          for (UnaryOperator<String> step : steps) {
            out = step.apply(out);
          }
          return out;
        };
      }
      case "Prepend": {
        String prepend = node.path("prepend").asText();
        return text -> text.isEmpty() ? text : prepend + text;
      }
      case "Replace": {
        String content = node.path("content").asText();
        JsonNode pattern = node.path("pattern");
        if (pattern.has("String")) {
          String target = pattern.get("String").asText();
          return text -> target.isEmpty() ? text : text.replace(target, content);
        }
        ValidationException.check(pattern.has("Regex"), "Invalid Replace pattern %s in %s: expected String or Regex", pattern, location);
        Regex regex = Regex.compile(pattern.get("Regex").asText(), location);
        return text -> regex.replaceAll(text, content);
      }
      case "NFC":
      case "NFKC":
      case "NFD":
      case "NFKD": {
        Normalizer.Form form = Normalizer.Form.valueOf(type);
        return text -> Normalizer.normalize(text, form);
      }
      case "Lowercase":
        return text -> text.toLowerCase(Locale.ROOT);
      case "Strip": {
        boolean left = node.path("strip_left").asBoolean(true);
        boolean right = node.path("strip_right").asBoolean(true);
        return text -> strip(text, left, right);
      }
      default:
        throw new ValidationException("Unsupported normalizer '" + type + "' in " + location);
    }
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
