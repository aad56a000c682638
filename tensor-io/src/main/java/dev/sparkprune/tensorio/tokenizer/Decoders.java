package dev.sparkprune.tensorio.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.tensorio.ValidationException;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * Hugging Face decoders, each a step from token strings to token strings (HF's
 * {@code decode_chain}); the final strings are joined. Supported: ByteLevel, Metaspace,
 * Replace, ByteFallback, Fuse, Strip and Sequence of them.
 */
final class Decoders {
  private Decoders() {}

  /** Without a decoder HF joins tokens with spaces; a chain ends in one string. */
  static UnaryOperator<List<String>> parse(String location, JsonNode node) {
    if (node == null || node.isMissingNode() || node.isNull()) {
      return tokens -> List.of(String.join(" ", tokens));
    }
    String type = node.path("type").asText();
    switch (type) {
      case "Sequence": {
        List<UnaryOperator<List<String>>> steps = new ArrayList<>();
        node.path("decoders").forEach(child -> steps.add(parse(location, child)));
        return tokens -> {
          List<String> out = tokens;
          for (UnaryOperator<List<String>> step : steps) {
            out = step.apply(out);
          }
          return out;
        };
      }
      case "ByteLevel":
        return Decoders::byteLevel;
      case "Metaspace": {
        String replacement = node.path("replacement").asText("\u2581");
        boolean prepend = node.has("prepend_scheme")
            ? !node.get("prepend_scheme").asText().equals("never")
            : node.path("add_prefix_space").asBoolean(true);
        return tokens -> {
          List<String> out = new ArrayList<>(tokens.size());
          for (String token : tokens) {
            // HF drops every replacement in the first token, not just a leading one.
            out.add(token.replace(replacement, prepend && out.isEmpty() ? "" : " "));
          }
          return out;
        };
      }
      case "Replace": {
        JsonNode pattern = node.path("pattern");
        ValidationException.check(pattern.has("String"), "Unsupported Replace decoder pattern %s in %s", pattern, location);
        String target = pattern.get("String").asText();
        String content = node.path("content").asText();
        return tokens -> tokens.stream().map(token -> target.isEmpty() ? token : token.replace(target, content)).toList();
      }
      case "ByteFallback":
        return Decoders::byteFallback;
      case "Fuse":
        return tokens -> List.of(String.join("", tokens));
      case "Strip": {
        String content = node.path("content").asText(" ");
        ValidationException.check(content.length() == 1, "Invalid Strip decoder content '%s' in %s: expected one character", content, location);
        int start = node.path("start").asInt(0);
        int stop = node.path("stop").asInt(0);
        return tokens -> tokens.stream().map(token -> strip(token, content.charAt(0), start, stop)).toList();
      }
      default:
        throw new ValidationException("Unsupported decoder '" + type + "' in " + location);
    }
  }

  /** GPT-2's byte map back to bytes; a token with a character outside the map is taken as UTF-8. */
  private static List<String> byteLevel(List<String> tokens) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (String token : tokens) {
      byte[] mapped = ByteLevel.decode(token);
      byte[] raw = mapped != null ? mapped : token.getBytes(StandardCharsets.UTF_8);
      bytes.write(raw, 0, raw.length);
    }
    return List.of(new String(bytes.toByteArray(), StandardCharsets.UTF_8));
  }

  /** Runs of {@code <0xNN>} tokens become their UTF-8 text, or one U+FFFD per byte if invalid. */
  private static List<String> byteFallback(List<String> tokens) {
    List<String> out = new ArrayList<>(tokens.size());
    ByteArrayOutputStream pending = new ByteArrayOutputStream();
    for (String token : tokens) {
      int value = byteToken(token);
      if (value >= 0) {
        pending.write(value);
        continue;
      }
      flush(pending, out);
      out.add(token);
    }
    flush(pending, out);
    return out;
  }

  private static void flush(ByteArrayOutputStream pending, List<String> out) {
    if (pending.size() == 0) {
      return;
    }
    try {
      out.add(StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(pending.toByteArray()))
          .toString());
    } catch (CharacterCodingException e) {
      out.add("\ufffd".repeat(pending.size()));
    }
    pending.reset();
  }

  /** The byte of a {@code <0xNN>} token, or -1. */
  static int byteToken(String token) {
    if (token.length() != 6 || !token.startsWith("<0x") || token.charAt(5) != '>') {
      return -1;
    }
    int high = Character.digit(token.charAt(3), 16);
    int low = Character.digit(token.charAt(4), 16);
    return high < 0 || low < 0 ? -1 : high * 16 + low;
  }

  private static String strip(String token, char content, int start, int stop) {
    int from = 0;
    while (from < start && from < token.length() && token.charAt(from) == content) {
      from++;
    }
    int to = token.length();
    while (token.length() - to < stop && to > from && token.charAt(to - 1) == content) {
      to--;
    }
    return token.substring(from, to);
  }
}
