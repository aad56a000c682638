package dev.sparkprune.tensorio.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.InputFile;
import dev.sparkprune.tensorio.io.InputFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Builds a {@link BpeTokenizer} from {@code tokenizer.json} and {@code tokenizer_config.json}.
 * Supported: model BPE; normalizers Sequence, Prepend, Replace, NFC/NFKC/NFD/NFKD, Lowercase,
 * Strip; pre-tokenizers ByteLevel, Metaspace, Split, Digits, Sequence. Anything else is refused
 * with its name.
 */
public final class TokenizerLoader {
  /** GPT-2's split regex, used by ByteLevel with use_regex. */
  static final String GPT2_PATTERN =
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long MAX_BYTES = 256L << 20;

  private TokenizerLoader() {}

  public static Tokenizer load(ModelArchive archive) throws IOException {
    ValidationException.check(
        archive.otherFiles().contains("tokenizer.json"),
        "Cannot tokenize for %s: the archive has no tokenizer.json",
        archive.location());
    String tokenizer = read(archive.io().newInputFile(archive.io().resolve(archive.location(), "tokenizer.json")));
    String config =
        archive.otherFiles().contains("tokenizer_config.json")
            ? read(archive.io().newInputFile(archive.io().resolve(archive.location(), "tokenizer_config.json")))
            : "{}";
    return parse(archive.location() + "/tokenizer.json", tokenizer, config);
  }

  private static String read(InputFile file) throws IOException {
    return new String(InputFiles.readAll(file, MAX_BYTES), StandardCharsets.UTF_8);
  }

  public static BpeTokenizer parse(String location, String tokenizerJson, String configJson) {
    JsonNode root = tree(location, tokenizerJson);
    JsonNode config = tree(location.replace("tokenizer.json", "tokenizer_config.json"), configJson);
    JsonNode model = root.path("model");
    String type = model.path("type").asText(model.has("merges") ? "BPE" : "");
    ValidationException.check(
        type.equals("BPE"),
        "Unsupported tokenizer model '%s' in %s; sparkprune supports BPE (SentencePiece-style with byte fallback, and byte-level)",
        type,
        location);

    Map<String, Integer> vocab = new HashMap<>();
    int size = 0;
    for (Map.Entry<String, JsonNode> entry : model.path("vocab").properties()) {
      vocab.put(entry.getKey(), entry.getValue().asInt());
      size = Math.max(size, entry.getValue().asInt() + 1);
    }
    List<BpeTokenizer.AddedToken> added = new ArrayList<>();
    Set<Integer> specialIds = new HashSet<>();
    for (JsonNode token : root.path("added_tokens")) {
      int id = token.path("id").asInt();
      String content = token.path("content").asText();
      added.add(new BpeTokenizer.AddedToken(content, id));
      vocab.putIfAbsent(content, id);
      if (token.path("special").asBoolean(false)) {
        specialIds.add(id);
      }
      size = Math.max(size, id + 1);
    }
    String[] tokens = new String[size];
    vocab.forEach((token, id) -> tokens[id] = token);

    Map<Long, BpeMerger.Merge> merges = new HashMap<>();
    int rank = 0;
    for (JsonNode merge : model.path("merges")) {
      String left;
      String right;
      if (merge.isArray()) {
        left = merge.get(0).asText();
        right = merge.get(1).asText();
      } else {
        String text = merge.asText();
        int space = text.indexOf(' ', 1);
        ValidationException.check(space > 0, "Invalid merge '%s' in %s", text, location);
        left = text.substring(0, space);
        right = text.substring(space + 1);
      }
      Integer leftId = vocab.get(left);
      Integer rightId = vocab.get(right);
      Integer result = vocab.get(left + right);
      ValidationException.check(
          leftId != null && rightId != null && result != null,
          "Invalid merge '%s %s' in %s: a part or the result is not in the vocabulary",
          left,
          right,
          location);
      merges.putIfAbsent(BpeMerger.pair(leftId, rightId), new BpeMerger.Merge(rank++, result));
    }

    JsonNode preTokenizer = root.path("pre_tokenizer");
    boolean byteLevel = mentions(preTokenizer, "ByteLevel") || mentions(root.path("decoder"), "ByteLevel");
    JsonNode decoder = root.path("decoder");
    boolean stripLeadingSpace =
        !byteLevel && (hasStripStart(decoder) || mentions(decoder, "Metaspace") && !"never".equals(findText(decoder, "prepend_scheme")));
    int unkId = model.hasNonNull("unk_token") ? vocab.getOrDefault(model.get("unk_token").asText(), -1) : -1;
    int bosId = specialId(config, "bos_token", vocab);
    int eosId = specialId(config, "eos_token", vocab);
    boolean addBos = config.has("add_bos_token") ? config.get("add_bos_token").asBoolean() : templateStartsWithSpecial(root);
    boolean addEos = config.path("add_eos_token").asBoolean(false);
    if (bosId < 0 && addBos) {
      bosId = templateFirstSpecialId(root);
    }
    return new BpeTokenizer(
        vocab,
        tokens,
        new BpeMerger(merges),
        normalizer(location, root.path("normalizer")),
        preTokenizer(location, preTokenizer),
        byteLevel,
        model.path("byte_fallback").asBoolean(false),
        unkId,
        added,
        specialIds,
        bosId,
        eosId,
        addBos,
        addEos,
        stripLeadingSpace,
        model.path("ignore_merges").asBoolean(false));
  }

  private static JsonNode tree(String location, String text) {
    try {
      JsonNode node = JSON.readTree(text);
      ValidationException.check(node != null && node.isObject(), "Invalid %s: expected a JSON object", location);
      return node;
    } catch (JsonProcessingException e) {
      throw new ValidationException("Invalid " + location + ": not valid JSON (" + e.getOriginalMessage() + ")");
    }
  }

  private static UnaryOperator<String> normalizer(String location, JsonNode node) {
    if (node == null || node.isMissingNode() || node.isNull()) {
      return UnaryOperator.identity();
    }
    String type = node.path("type").asText();
    switch (type) {
      case "Sequence": {
        List<UnaryOperator<String>> steps = new ArrayList<>();
        node.path("normalizers").forEach(child -> steps.add(normalizer(location, child)));
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
        Pattern pattern = pattern(location, node.path("pattern"));
        String content = Matcher.quoteReplacement(node.path("content").asText());
        return text -> pattern.matcher(text).replaceAll(content);
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
        return text -> left && right ? text.strip() : left ? text.stripLeading() : right ? text.stripTrailing() : text;
      }
      default:
        throw new ValidationException("Unsupported normalizer '" + type + "' in " + location);
    }
  }

  private static BpeTokenizer.PreTokenizer preTokenizer(String location, JsonNode node) {
    if (node == null || node.isMissingNode() || node.isNull()) {
      return BpeTokenizer::single;
    }
    String type = node.path("type").asText();
    switch (type) {
      case "Sequence": {
        List<BpeTokenizer.PreTokenizer> steps = new ArrayList<>();
        node.path("pretokenizers").forEach(child -> steps.add(preTokenizer(location, child)));
        return text -> {
          List<String> words = BpeTokenizer.single(text);
          for (BpeTokenizer.PreTokenizer step : steps) {
            List<String> next = new ArrayList<>();
            words.forEach(word -> next.addAll(step.split(word)));
            words = next;
          }
          return words;
        };
      }
      case "ByteLevel": {
        boolean prefixSpace = node.path("add_prefix_space").asBoolean(false);
        boolean useRegex = node.path("use_regex").asBoolean(true);
        Pattern gpt2 = Pattern.compile(GPT2_PATTERN);
        return text -> {
          String prefixed = prefixSpace && !text.startsWith(" ") ? " " + text : text;
          return useRegex ? isolate(gpt2, prefixed) : BpeTokenizer.single(prefixed);
        };
      }
      case "Split": {
        Pattern pattern = pattern(location, node.path("pattern"));
        String behavior = node.path("behavior").asText("Isolated");
        ValidationException.check(
            behavior.equals("Isolated") && !node.path("invert").asBoolean(false),
            "Unsupported Split pre-tokenizer (behavior %s, invert %s) in %s",
            behavior,
            node.path("invert").asBoolean(false),
            location);
        return text -> isolate(pattern, text);
      }
      case "Digits": {
        Pattern digits = Pattern.compile(node.path("individual_digits").asBoolean(false) ? "\\p{Nd}" : "\\p{Nd}+");
        return text -> isolate(digits, text);
      }
      case "Metaspace": {
        String replacement = node.path("replacement").asText("\u2581");
        String scheme = node.has("prepend_scheme")
            ? node.get("prepend_scheme").asText()
            : node.path("add_prefix_space").asBoolean(true) ? "always" : "never";
        boolean split = node.path("split").asBoolean(true);
        return text -> {
          String replaced = text.replace(" ", replacement);
          if (!scheme.equals("never") && !replaced.startsWith(replacement)) {
            replaced = replacement + replaced;
          }
          if (!split) {
            return BpeTokenizer.single(replaced);
          }
          List<String> words = new ArrayList<>();
          int start = 0;
          for (int i = 1; i <= replaced.length(); i++) {
            if (i == replaced.length() || replaced.startsWith(replacement, i)) {
              words.add(replaced.substring(start, i));
              start = i;
            }
          }
          return words;
        };
      }
      default:
        throw new ValidationException("Unsupported pre-tokenizer '" + type + "' in " + location);
    }
  }

  /** Matches become words of their own; text between matches too. */
  private static List<String> isolate(Pattern pattern, String text) {
    List<String> words = new ArrayList<>();
    Matcher matcher = pattern.matcher(text);
    int last = 0;
    while (matcher.find()) {
      if (matcher.start() > last) {
        words.add(text.substring(last, matcher.start()));
      }
      if (matcher.end() > matcher.start()) {
        words.add(matcher.group());
      }
      last = matcher.end();
    }
    if (last < text.length()) {
      words.add(text.substring(last));
    }
    return words;
  }

  private static Pattern pattern(String location, JsonNode node) {
    if (node.has("String")) {
      return Pattern.compile(Pattern.quote(node.get("String").asText()));
    }
    ValidationException.check(node.has("Regex"), "Invalid pattern %s in %s", node, location);
    try {
      return Pattern.compile(node.get("Regex").asText());
    } catch (java.util.regex.PatternSyntaxException e) {
      throw new ValidationException("Unsupported regex in " + location + ": " + e.getDescription());
    }
  }

  private static boolean mentions(JsonNode node, String type) {
    if (node == null || node.isMissingNode() || node.isNull()) {
      return false;
    }
    if (type.equals(node.path("type").asText())) {
      return true;
    }
    for (JsonNode child : node) {
      if (child.isContainerNode() && mentions(child, type)) {
        return true;
      }
    }
    return false;
  }

  private static String findText(JsonNode node, String field) {
    JsonNode found = node.findValue(field);
    return found == null ? null : found.asText();
  }

  private static boolean hasStripStart(JsonNode decoder) {
    if (decoder == null || decoder.isMissingNode()) {
      return false;
    }
    if ("Strip".equals(decoder.path("type").asText()) && decoder.path("start").asInt(0) > 0) {
      return true;
    }
    for (JsonNode child : decoder) {
      if (child.isContainerNode() && hasStripStart(child)) {
        return true;
      }
    }
    return false;
  }

  private static int specialId(JsonNode config, String key, Map<String, Integer> vocab) {
    JsonNode node = config.get(key);
    if (node == null || node.isNull()) {
      return -1;
    }
    String content = node.isTextual() ? node.asText() : node.path("content").asText();
    return vocab.getOrDefault(content, -1);
  }

  private static boolean templateStartsWithSpecial(JsonNode root) {
    return templateFirstSpecialId(root) >= 0;
  }

  private static int templateFirstSpecialId(JsonNode root) {
    JsonNode processor = root.path("post_processor");
    JsonNode single = processor.path("single");
    if (!"TemplateProcessing".equals(processor.path("type").asText()) || single.size() == 0 || !single.get(0).has("SpecialToken")) {
      return -1;
    }
    String name = single.get(0).path("SpecialToken").path("id").asText();
    JsonNode ids = processor.path("special_tokens").path(name).path("ids");
    return ids.size() > 0 ? ids.get(0).asInt() : -1;
  }
}
