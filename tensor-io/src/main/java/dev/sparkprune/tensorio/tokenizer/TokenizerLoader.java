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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * Builds a {@link BpeTokenizer} from {@code tokenizer.json} and {@code tokenizer_config.json}.
 * Supported: model BPE; the normalizers of {@link Normalizers}, the pre-tokenizers of
 * {@link PreTokenizers}, the decoders of {@link Decoders}; post-processors TemplateProcessing,
 * ByteLevel, BertProcessing, RobertaProcessing and Sequence of them. Anything else is refused
 * with its name, and so are negative, duplicate or out-of-range vocabulary ids.
 */
public final class TokenizerLoader {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long MAX_BYTES = 256L << 20;
  private static final char METASPACE = '\u2581';

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
    TokenizerJson root = TokenizerJson.parse(location, tokenizerJson);
    JsonNode config = tree(location.replace("tokenizer.json", "tokenizer_config.json"), configJson);
    JsonNode model = root.model();
    String type = model.path("type").asText(root.mergeLefts().isEmpty() ? "" : "BPE");
    ValidationException.check(
        type.equals("BPE"),
        "Unsupported tokenizer model '%s' in %s; sparkprune supports BPE (SentencePiece-style with byte fallback, and byte-level)",
        type,
        location);
    for (String affix : List.of("continuing_subword_prefix", "end_of_word_suffix")) {
      ValidationException.check(
          model.path(affix).asText("").isEmpty(), "Unsupported BPE option %s '%s' in %s", affix, model.path(affix).asText(), location);
    }

    UnaryOperator<String> normalizer = Normalizers.parse(location, root.path("normalizer"));
    JsonNode addedNode = root.path("added_tokens");
    // Ids index arrays: bound them by the number of entries before allocating anything.
    int bound = root.vocabTokens().size() + addedNode.size();
    Map<String, Integer> vocab = new HashMap<>(bound * 2);
    String[] tokens = new String[bound];
    for (int i = 0; i < root.vocabTokens().size(); i++) {
      String token = root.vocabTokens().get(i);
      int id = root.vocabIds().get(i);
      checkId(location, "model.vocab", token, id, bound);
      ValidationException.check(
          tokens[id] == null,
          "Invalid %s: vocabulary id %d is given to both '%s' and '%s'; each token needs its own id",
          location, id, tokens[id], token);
      tokens[id] = token;
      vocab.put(token, id);
    }
    List<AddedTokens.Token> added = new ArrayList<>();
    Set<Integer> specialIds = new HashSet<>();
    for (JsonNode token : addedNode) {
      String content = token.path("content").asText();
      // HF gives an added token whose content the model already has the model's id.
      Integer known = vocab.get(content);
      int id = known != null ? known : id(location, "added_tokens", content, token.path("id"), bound);
      boolean special = token.path("special").asBoolean(false);
      boolean normalized = token.path("normalized").asBoolean(!special);
      added.add(new AddedTokens.Token(content, id, special, token.path("single_word").asBoolean(false),
          token.path("lstrip").asBoolean(false), token.path("rstrip").asBoolean(false), normalized));
      vocab.putIfAbsent(content, id);
      // HF decodes an id through its added token first, normalized as it is matched.
      tokens[id] = normalized ? normalizer.apply(content) : content;
      if (special) {
        specialIds.add(id);
      }
    }
    int size = tokens.length;
    while (size > 0 && tokens[size - 1] == null) {
      size--;
    }
    tokens = Arrays.copyOf(tokens, size);

    BpeMerger merger = new BpeMerger(root.mergeLefts().size());
    boolean[] crossesCut = new boolean[Character.MAX_VALUE + 1];
    boolean cuttable = vocab.containsKey(String.valueOf(METASPACE));
    int unkId = model.hasNonNull("unk_token") ? vocab.getOrDefault(model.get("unk_token").asText(), -1) : -1;
    int rank = 0;
    for (int i = 0; i < root.mergeLefts().size(); i++) {
      String left = root.mergeLefts().get(i);
      String right = root.mergeRights().get(i);
      Integer leftId = vocab.get(left);
      Integer rightId = vocab.get(right);
      String joined = left + right;
      Integer result = vocab.get(joined);
      ValidationException.check(
          leftId != null && rightId != null && result != null,
          "Invalid merge '%s %s' in %s: a part or the result is not in the vocabulary",
          left,
          right,
          location);
      merger.add(leftId, rightId, rank++, result);
      for (int p = joined.indexOf(METASPACE, 1); p > 0; p = joined.indexOf(METASPACE, p + 1)) {
        crossesCut[joined.charAt(p - 1)] = true;
      }
      // A byte or unknown symbol stands for characters its text does not show: no cutting.
      if (Decoders.byteToken(left) >= 0 || Decoders.byteToken(right) >= 0 || leftId == unkId || rightId == unkId) {
        cuttable = false;
      }
    }

    JsonNode preTokenizer = root.path("pre_tokenizer");
    boolean byteLevel = mentions(preTokenizer, "ByteLevel") || mentions(root.path("decoder"), "ByteLevel");
    BpeModel bpe = new BpeModel(vocab, merger, byteLevel, model.path("byte_fallback").asBoolean(false), unkId,
        model.path("fuse_unk").asBoolean(false), model.path("ignore_merges").asBoolean(false), crossesCut, cuttable);
    PostProcessor post = PostProcessor.parse(location, root.path("post_processor")).withConfig(config, vocab);
    return new BpeTokenizer(
        location,
        tokens,
        bpe,
        new AddedTokens(added, normalizer),
        normalizer,
        PreTokenizers.parse(location, preTokenizer),
        Decoders.parse(location, root.path("decoder")),
        specialIds,
        post.prefix(),
        post.suffix(),
        post.bosId(),
        post.eosId());
  }

  private static int id(String location, String where, String token, JsonNode value, int bound) {
    ValidationException.check(
        value.canConvertToInt() && value.isIntegralNumber(),
        "Invalid %s: %s id %s of '%s' must be an integer", location, where, value, token);
    return checkId(location, where, token, value.asInt(), bound);
  }

  private static int checkId(String location, String where, String token, int id, int bound) {
    ValidationException.check(
        id >= 0 && id < bound,
        "Invalid %s: %s id %d of '%s' must be an integer from 0 to %d (the number of tokens minus one)",
        location, where, id, token, bound - 1);
    return id;
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
}
