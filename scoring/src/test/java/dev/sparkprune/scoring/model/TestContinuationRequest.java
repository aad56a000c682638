package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Pairs encoded as lm-evaluation-harness's _encode_pair does, with stories260K's SentencePiece-style BPE. */
class TestContinuationRequest {

  private static Tokenizer tokenizer() throws IOException {
    return TokenizerLoader.load(ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString()));
  }

  @Test
  void trailingContextSpacesMoveToTheContinuationAndThePairIsEncodedWhole() throws IOException {
    Tokenizer tokenizer = tokenizer();
    ContinuationRequest request = ContinuationRequest.encode(tokenizer, "Once upon a time,  ", "there was a cat.");
    int[] context = tokenizer.encode("Once upon a time,", false);
    int[] whole = tokenizer.encode("Once upon a time,  there was a cat.", false);
    assertThat(request.context()).containsExactly(context);
    assertThat(request.continuation()).containsExactly(Arrays.copyOfRange(whole, context.length, whole.length));
    // No BOS: lm-eval encodes causal-LM requests without special tokens.
    assertThat(request.context()[0]).isNotEqualTo(tokenizer.bosId());
  }

  @Test
  void theContinuationIsWhatTheWholeEncodingAddsNotItsOwnEncoding() throws IOException {
    Tokenizer tokenizer = tokenizer();
    ContinuationRequest request = ContinuationRequest.encode(tokenizer, "The dog", " ran home.");
    int[] whole = tokenizer.encode("The dog ran home.", false);
    assertThat(concat(request.context(), request.continuation())).containsExactly(whole);
    assertThat(tokenizer.decode(request.continuation()).strip()).isEqualTo("ran home.");
  }

  @Test
  void anEmptyContextScoresAfterBos() throws IOException {
    Tokenizer tokenizer = tokenizer();
    ContinuationRequest request = ContinuationRequest.encode(tokenizer, "", " yes");
    assertThat(request.context()).containsExactly(1);
    assertThat(request.continuation()).containsExactly(tokenizer.encode(" yes", false));
  }

  @Test
  void refusesWhitespaceOnlyContextsAndEmptyContinuations() throws IOException {
    Tokenizer tokenizer = tokenizer();
    assertThatThrownBy(() -> ContinuationRequest.encode(tokenizer, " \n", "yes"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot score a continuation: the context is only whitespace");
    assertThatThrownBy(() -> ContinuationRequest.encode(tokenizer, "The dog", ""))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot score continuation '': it adds no tokens to its context");
  }

  @Test
  void whitespaceIsPythons() {
    assertThat(ContinuationRequest.isPythonWhitespace(' ')).isTrue();
    assertThat(ContinuationRequest.isPythonWhitespace('\u00a0')).isTrue();
    assertThat(ContinuationRequest.isPythonWhitespace('\u0085')).isTrue();
    assertThat(ContinuationRequest.isPythonWhitespace('\u202f')).isTrue();
    assertThat(ContinuationRequest.isPythonWhitespace('\u001f')).isTrue();
    assertThat(ContinuationRequest.isPythonWhitespace('\u200b')).isFalse();
    assertThat(ContinuationRequest.isPythonWhitespace('x')).isFalse();
  }

  private static int[] concat(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
