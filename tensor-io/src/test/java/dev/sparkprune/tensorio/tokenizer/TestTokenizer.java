package dev.sparkprune.tensorio.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TestTokenizer {

  private static Tokenizer stories() throws IOException {
    return TokenizerLoader.load(ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString()));
  }

  @Test
  void firstTokensMatchTheGoldenEncoding() throws IOException {
    JsonNode reference = new ObjectMapper().readTree(SharedData.path("data/stories260K/reference_eval.json").toFile());
    String text = Files.readString(SharedData.path("data/tinystories/tinystories_val_sample.txt")).substring(0, 4000);
    int[] ids = stories().encode(text, true);
    JsonNode expected = reference.get("token_ids_first_32");
    for (int i = 0; i < expected.size(); i++) {
      assertThat(ids[i]).as("token %d", i).isEqualTo(expected.get(i).asInt());
    }
    assertThat(ids[0]).isEqualTo(1);
  }

  /** llama2.c's encoder: dummy prefix, codepoints or byte fallback (+3), then greedy max-score merges. */
  private static final class Llama2cTokenizer {
    private final String[] vocab;
    private final float[] scores;
    private final Map<String, Integer> lookup = new HashMap<>();

    Llama2cTokenizer(byte[] file, int size) {
      ByteBuffer buffer = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
      buffer.getInt();
      vocab = new String[size];
      scores = new float[size];
      for (int i = 0; i < size; i++) {
        scores[i] = buffer.getFloat();
        byte[] piece = new byte[buffer.getInt()];
        buffer.get(piece);
        vocab[i] = new String(piece, StandardCharsets.UTF_8);
        lookup.putIfAbsent(vocab[i], i);
      }
    }

    List<Integer> encode(String text) {
      List<Integer> tokens = new ArrayList<>();
      tokens.add(lookup.get(" "));
      for (int i = 0; i < text.length(); ) {
        int codePoint = text.codePointAt(i);
        String symbol = new String(Character.toChars(codePoint));
        Integer id = lookup.get(symbol);
        if (id != null) {
          tokens.add(id);
        } else {
          for (byte b : symbol.getBytes(StandardCharsets.UTF_8)) {
            tokens.add((b & 0xFF) + 3);
          }
        }
        i += Character.charCount(codePoint);
      }
      while (true) {
        float best = -1e10f;
        int bestId = -1;
        int bestIndex = -1;
        for (int i = 0; i + 1 < tokens.size(); i++) {
          Integer id = lookup.get(vocab[tokens.get(i)] + vocab[tokens.get(i + 1)]);
          if (id != null && scores[id] > best) {
            best = scores[id];
            bestId = id;
            bestIndex = i;
          }
        }
        if (bestIndex < 0) {
          return tokens;
        }
        tokens.set(bestIndex, bestId);
        tokens.remove(bestIndex + 1);
      }
    }
  }

  @Test
  void agreesWithTheLlama2cTokenizerOnLongerTextFromThreeCorpora() throws IOException {
    Tokenizer tokenizer = stories();
    Llama2cTokenizer reference =
        new Llama2cTokenizer(Files.readAllBytes(SharedData.path("data/stories260K-llama2c/tok512.bin")), 512);
    List<String> passages = new ArrayList<>();
    String stories = Files.readString(SharedData.path("data/tinystories/tinystories_val_sample.txt"));
    for (String story : stories.split("\n\n")) {
      if (passages.size() < 8 && story.length() > 200) {
        passages.add(story);
      }
    }
    String wiki = Files.readString(SharedData.path("data/wikitext-2/wiki.test.raw"));
    passages.add(wiki.substring(0, 3000));
    passages.add(wiki.substring(100_000, 103_000));
    // PTB writes rare words as "<unk>", which Hugging Face tokenizers match as the special token
    // (checked below) while llama2.c spells it out; compare the rest.
    passages.add(Files.readString(SharedData.path("data/ptb/ptb.test.txt")).substring(0, 3000).replace("<unk>", "unk"));
    passages.add("Ünïcödé — “quotes”, emoji 😀 and 中文 fall back to bytes");
    long total = 0;
    for (String passage : passages) {
      int[] ids = tokenizer.encode(passage, false);
      List<Integer> expected = reference.encode(passage);
      assertThat(ids).as("passage starting %s", passage.substring(0, 20)).containsExactly(expected.stream().mapToInt(Integer::intValue).toArray());
      assertThat(tokenizer.decode(ids)).isEqualTo(passage);
      total += ids.length;
    }
    assertThat(total).isGreaterThan(5000);
  }

  @Test
  void specialTokensInTextAndDecoding() throws IOException {
    Tokenizer tokenizer = stories();
    int[] ids = tokenizer.encode("Hi</s>", true);
    assertThat(ids[0]).isEqualTo(1);
    assertThat(ids[ids.length - 1]).isEqualTo(2);
    assertThat(tokenizer.decode(ids)).isEqualTo("Hi");
    int[] unk = tokenizer.encode("a <unk> b", false);
    assertThat(unk).contains(0);
    assertThat(tokenizer.bosId()).isEqualTo(1);
    assertThat(tokenizer.eosId()).isEqualTo(2);
    assertThat(tokenizer.vocabSize()).isEqualTo(512);
  }

  /** A tiny byte-level tokenizer in GPT-2's format: byte map, regex split, ranked merges. */
  @Test
  void byteLevelBpeSplitsWithTheGpt2RegexAndMergesByRank() {
    StringBuilder vocab = new StringBuilder("{");
    int id = 0;
    List<String> symbols = new ArrayList<>();
    for (int b = 0; b < 256; b++) {
      symbols.add(ByteLevel.encode(new byte[] {(byte) b}));
    }
    symbols.addAll(List.of("Ġt", "he", "Ġthe", "ll", "llo", "Ġhe", "Ġhello"));
    for (String symbol : symbols) {
      vocab.append(id == 0 ? "" : ",").append(new ObjectMapper().valueToTree(symbol).toString()).append(':').append(id++);
    }
    vocab.append(",\"<|endoftext|>\":").append(id).append('}');
    String json =
        "{\"added_tokens\":[{\"id\":" + id + ",\"content\":\"<|endoftext|>\",\"special\":true}],"
            + "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
            + "\"decoder\":{\"type\":\"ByteLevel\"},"
            + "\"model\":{\"type\":\"BPE\",\"vocab\":" + vocab + ",\"merges\":[\"Ġ t\",\"h e\",\"Ġt he\",\"l l\",\"ll o\",\"Ġ he\",\"Ġhe llo\"]}}";
    BpeTokenizer tokenizer = TokenizerLoader.parse("gpt2/tokenizer.json", json, "{\"bos_token\":\"<|endoftext|>\",\"eos_token\":\"<|endoftext|>\"}");
    int[] ids = tokenizer.encode("the hello, the\n\n!", true);
    // "the" has no leading space: t, he; " hello" merges fully; "," a byte; " the" merges fully.
    assertThat(ids).containsExactly('t' - 33 + 0 >= 0 ? symbols.indexOf("t") : -1, symbols.indexOf("he"), symbols.indexOf("Ġhello"),
        symbols.indexOf(","), symbols.indexOf("Ġthe"), symbols.indexOf("Ċ"), symbols.indexOf("Ċ"), symbols.indexOf("!"));
    assertThat(tokenizer.decode(ids)).isEqualTo("the hello, the\n\n!");
    assertThat(tokenizer.encode("é", false)).containsExactly(symbols.indexOf("Ã"), symbols.indexOf("©"));
  }

  @Test
  void unsupportedModelsAreNamed() {
    assertThatThrownBy(() -> TokenizerLoader.parse("bert/tokenizer.json", "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", "{}"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Unsupported tokenizer model 'WordPiece' in bert/tokenizer.json");
    assertThatThrownBy(() -> TokenizerLoader.parse("t5/tokenizer.json", "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", "{}"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("'Unigram'");
  }

  /** A minimal SentencePiece-style file: characters a, b and the merge a b. */
  private static String tinyJson(String vocab, String preTokenizer) {
    return "{\"pre_tokenizer\":" + preTokenizer + ",\"model\":{\"type\":\"BPE\",\"vocab\":" + vocab + ",\"merges\":[]}}";
  }

  @Test
  void negativeAndDuplicateVocabularyIdsAreRefusedNamingTheFile() {
    assertThatThrownBy(() -> TokenizerLoader.parse("m/tokenizer.json", tinyJson("{\"a\":0,\"b\":-3}", "null"), "{}"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid m/tokenizer.json: model.vocab id -3 of 'b' must be an integer from 0 to 1 (the number of tokens minus one)");
    assertThatThrownBy(() -> TokenizerLoader.parse("m/tokenizer.json", tinyJson("{\"a\":1,\"b\":1}", "null"), "{}"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid m/tokenizer.json: vocabulary id 1 is given to both 'a' and 'b'; each token needs its own id");
    assertThatThrownBy(() -> TokenizerLoader.parse("m/tokenizer.json", tinyJson("{\"a\":0,\"b\":2000000000}", "null"), "{}"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("model.vocab id 2000000000 of 'b' must be an integer from 0 to 1");
    BpeTokenizer tokenizer = TokenizerLoader.parse("m/tokenizer.json", tinyJson("{\"a\":0,\"b\":1}", "null"), "{}");
    assertThatThrownBy(() -> tokenizer.decode(new int[] {0, 7}))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot decode token id 7: m/tokenizer.json has 2 tokens (ids 0 to 1)");
  }

  @Test
  void aCatastrophicallyBacktrackingRegexIsStoppedWithAClearError() {
    String split = "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a*a*a*a*a*a*a*a*b\"},\"behavior\":\"Isolated\",\"invert\":false}";
    BpeTokenizer tokenizer = TokenizerLoader.parse("evil/tokenizer.json", tinyJson("{\"a\":0,\"b\":1}", split), "{}");
    // Short inputs still work: the budget grows with the text.
    assertThat(tokenizer.encode("aab", false)).containsExactly(0, 0, 1);
    assertThatThrownBy(() -> tokenizer.encode("a".repeat(5000), false))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot tokenize: the regex 'a*a*a*a*a*a*a*a*b' in evil/tokenizer.json took over 4096 steps per character on a text "
            + "of 5000 characters (catastrophic backtracking); fix the pattern in the tokenizer file");
  }

  /** The tiny tokenizer with {@code normalizer} as its normalizer. */
  private static String withNormalizer(String normalizer) {
    return "{\"normalizer\":" + normalizer + ",\"pre_tokenizer\":null,\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"e\":2},\"merges\":[]}}";
  }

  /**
   * A tokenizer.json is untrusted: a Replace of "e" by 5,000 e's, or 30 chained doublings, made
   * the JVM run out of memory (3.2-3.5 GB); each is refused before its result is built. A real
   * normalizer (a prefix, spaces swapped) stays far below the bound.
   */
  @Test
  void aNormalizerThatExpandsTextWithoutBoundIsRefused() {
    String replace = "{\"type\":\"Replace\",\"pattern\":{\"String\":\"e\"},\"content\":\"" + "e".repeat(5000) + "\"}";
    BpeTokenizer bomb = TokenizerLoader.parse("bomb/tokenizer.json", withNormalizer(replace), "{}");
    assertThatThrownBy(() -> bomb.encode("eee", false))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot normalize text with the tokenizer in bomb/tokenizer.json: one of its normalizer steps turns 3 characters into 15000,"
            + " over the limit of 1048 (8 x the input + 1024); its Replace or Prepend steps expand text without bound");

    StringBuilder doublings = new StringBuilder("{\"type\":\"Sequence\",\"normalizers\":[");
    for (int i = 0; i < 30; i++) {
      doublings.append(i == 0 ? "" : ",").append("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"e\"},\"content\":\"ee\"}");
    }
    BpeTokenizer doubling = TokenizerLoader.parse("doubling/tokenizer.json", withNormalizer(doublings + "]}"), "{}");
    assertThatThrownBy(() -> doubling.encode("e".repeat(1000), false))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("one of its normalizer steps turns 8000 characters into 16000, over the limit of 9024");

    String prefix = "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"a\"},"
        + "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"b\"}]}";
    BpeTokenizer real = TokenizerLoader.parse("real/tokenizer.json", withNormalizer(prefix), "{}");
    assertThat(real.encode("e e", false)).containsExactly(0, 2, 1, 2);
  }

  /** A 200,000-step normalizer took 50 s to load and run; a pipeline has at most 64 steps. */
  @Test
  void aNormalizerPipelineHasABoundedSize() {
    StringBuilder steps = new StringBuilder("{\"type\":\"Sequence\",\"normalizers\":[");
    for (int i = 0; i < 200_000; i++) {
      steps.append(i == 0 ? "" : ",").append("{\"type\":\"Lowercase\"}");
    }
    String json = withNormalizer(steps + "]}");
    assertThatThrownBy(() -> TokenizerLoader.parse("long/tokenizer.json", json, "{}"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid tokenizer long/tokenizer.json: its normalizer has more than 64 steps");
  }
}
