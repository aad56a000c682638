package dev.sparkprune.jobs.text;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.util.Arrays;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;

/** Reading only as much text as K windows need gives the ids that tokenizing the whole text gives. */
class TestTextTokens {
  private final HadoopFileIO io = new HadoopFileIO(new Configuration());

  private Tokenizer stories260KTokenizer() throws IOException {
    return TokenizerLoader.load(ModelArchive.open(io, SharedData.stories260K().toString()));
  }

  /** The reference: every document, joined with a blank line, tokenized at once (eval's protocol). */
  private int[] whole(String location, Tokenizer tokenizer) throws IOException {
    return tokenizer.encode(String.join("\n\n", TextSource.read(io, location)), true);
  }

  @Test
  void thePrefixOfAPlainTextGivesTheWholeTextsFirstIds() throws IOException {
    Tokenizer tokenizer = stories260KTokenizer();
    String wiki = SharedData.path("data/wikitext-2/wiki.test.raw").toString();
    int[] reference = whole(wiki, tokenizer);
    for (int needed : new int[] {1, 3 * 512, 20 * 1024, 40_000}) {
      TextTokens.Corpus corpus = TextTokens.tokenize(io, wiki, tokenizer, needed);
      assertThat(corpus.complete()).as("only a prefix was read for %d ids", needed).isFalse();
      assertThat(corpus.ids()).as("first %d ids", needed).isEqualTo(Arrays.copyOf(reference, needed));
    }
    // More than the text holds: the whole text, as before.
    TextTokens.Corpus all = TextTokens.tokenize(io, wiki, tokenizer, Long.MAX_VALUE);
    assertThat(all.complete()).isTrue();
    assertThat(all.ids()).isEqualTo(reference);
  }

  @Test
  void thePrefixOfManyDocumentsGivesTheWholeSourcesFirstIds() throws IOException {
    Tokenizer tokenizer = stories260KTokenizer();
    // JSONL and Parquet documents go through the same reading; the JSONL copy is the cheaper to parse.
    String c4 = SharedData.path("data/c4/c4_validation_2k.jsonl").toString();
    int[] reference = whole(c4, tokenizer);
    TextTokens.Corpus corpus = TextTokens.tokenize(io, c4, tokenizer, 8 * 2048);
    assertThat(corpus.complete()).isFalse();
    assertThat(corpus.documents()).isLessThan(2000);
    assertThat(corpus.ids()).isEqualTo(Arrays.copyOf(reference, 8 * 2048));
  }
}
