package dev.sparkprune.tensorio.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.tensorio.ValidationException;
import java.util.Arrays;
import java.util.Map;

/**
 * The special tokens a post-processor puts around a single text: TemplateProcessing (its
 * {@code single} template), BertProcessing and RobertaProcessing (cls ... sep), ByteLevel
 * (none), and Sequence of them, each wrapping the result of the ones before (Llama-3.1 nests
 * its BOS template after ByteLevel).
 */
record PostProcessor(int[] prefix, int[] suffix, int bosId, int eosId) {
  private static final int[] NONE = new int[0];

  static PostProcessor parse(String location, JsonNode node) {
    if (node == null || node.isMissingNode() || node.isNull()) {
      return new PostProcessor(NONE, NONE, -1, -1);
    }
    String type = node.path("type").asText();
    switch (type) {
      case "ByteLevel":
        return new PostProcessor(NONE, NONE, -1, -1);
      case "Sequence": {
        int[] prefix = NONE;
        int[] suffix = NONE;
        for (JsonNode child : node.path("processors")) {
          PostProcessor inner = parse(location, child);
          prefix = concat(inner.prefix, prefix);
          suffix = concat(suffix, inner.suffix);
        }
        return new PostProcessor(prefix, suffix, -1, -1);
      }
      case "BertProcessing":
      case "RobertaProcessing":
        return new PostProcessor(new int[] {pairId(location, node, "cls")}, new int[] {pairId(location, node, "sep")}, -1, -1);
      case "TemplateProcessing":
        return template(location, node);
      default:
        throw new ValidationException("Unsupported post-processor '" + type + "' in " + location);
    }
  }

  private static PostProcessor template(String location, JsonNode node) {
    int[] prefix = NONE;
    int[] suffix = NONE;
    boolean seenSequence = false;
    for (JsonNode item : node.path("single")) {
      if (item.has("Sequence")) {
        seenSequence = true;
        continue;
      }
      String name = item.path("SpecialToken").path("id").asText();
      JsonNode ids = node.path("special_tokens").path(name).path("ids");
      ValidationException.check(
          item.has("SpecialToken") && ids.isArray() && ids.size() > 0,
          "Invalid TemplateProcessing in %s: special token '%s' has no ids in special_tokens",
          location,
          name);
      int[] values = new int[ids.size()];
      for (int i = 0; i < values.length; i++) {
        values[i] = ids.get(i).asInt();
      }
      if (seenSequence) {
        suffix = concat(suffix, values);
      } else {
        prefix = concat(prefix, values);
      }
    }
    return new PostProcessor(prefix, suffix, -1, -1);
  }

  private static int pairId(String location, JsonNode node, String field) {
    JsonNode pair = node.path(field);
    ValidationException.check(pair.isArray() && pair.size() == 2, "Invalid %s in %s: %s must be [token, id]", node.path("type").asText(), location, field);
    return pair.get(1).asInt();
  }

  /**
   * tokenizer_config.json's {@code add_bos_token}/{@code add_eos_token}, where given, win over
   * the template (as transformers rebuilds the template from them); BOS and EOS ids come from
   * its {@code bos_token}/{@code eos_token}, else BOS is the template's first special token.
   */
  PostProcessor withConfig(JsonNode config, Map<String, Integer> vocab) {
    int bos = specialId(config, "bos_token", vocab);
    int eos = specialId(config, "eos_token", vocab);
    if (bos < 0 && prefix.length > 0) {
      bos = prefix[0];
    }
    int[] before = prefix;
    int[] after = suffix;
    if (config.has("add_bos_token") && bos >= 0) {
      boolean has = before.length > 0 && before[0] == bos;
      if (config.get("add_bos_token").asBoolean() && before.length == 0) {
        before = new int[] {bos};
      } else if (!config.get("add_bos_token").asBoolean() && has) {
        before = Arrays.copyOfRange(before, 1, before.length);
      }
    }
    if (config.has("add_eos_token") && eos >= 0) {
      boolean has = after.length > 0 && after[after.length - 1] == eos;
      if (config.get("add_eos_token").asBoolean() && after.length == 0) {
        after = new int[] {eos};
      } else if (!config.get("add_eos_token").asBoolean() && has) {
        after = Arrays.copyOf(after, after.length - 1);
      }
    }
    return new PostProcessor(before, after, bos, eos);
  }

  private static int specialId(JsonNode config, String key, Map<String, Integer> vocab) {
    JsonNode node = config.get(key);
    if (node == null || node.isNull()) {
      return -1;
    }
    String content = node.isTextual() ? node.asText() : node.path("content").asText();
    return vocab.getOrDefault(content, -1);
  }

  private static int[] concat(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
