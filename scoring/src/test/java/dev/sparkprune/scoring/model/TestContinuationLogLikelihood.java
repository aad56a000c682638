package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/**
 * Continuation log-likelihoods on stories260K against a direct computation: the whole sequence
 * through {@link DecoderModel#forward}, cut as lm-evaluation-harness cuts it, and a float64
 * log-softmax written out here, reading each target as the next token of the kept window.
 */
class TestContinuationLogLikelihood {

  private static ModelArchive archive() throws IOException {
    return ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString());
  }

  /** log P(continuation | context) from scratch: the last maxLength + 1 tokens, shifted labels. */
  static double direct(DecoderModel model, int[] context, int[] continuation, int maxLength) throws IOException {
    int[] all = new int[context.length + continuation.length];
    System.arraycopy(context, 0, all, 0, context.length);
    System.arraycopy(continuation, 0, all, context.length, continuation.length);
    int[] kept = Arrays.copyOfRange(all, Math.max(0, all.length - (maxLength + 1)), all.length);
    int[] input = Arrays.copyOf(kept, kept.length - 1);
    float[] logits = model.logits(model.forward(new int[][] {input}), 0);
    int vocab = model.vocabSize();
    double sum = 0;
    for (int position = input.length - continuation.length; position < input.length; position++) {
      double max = Double.NEGATIVE_INFINITY;
      for (int v = 0; v < vocab; v++) {
        max = Math.max(max, logits[position * vocab + v]);
      }
      double total = 0;
      for (int v = 0; v < vocab; v++) {
        total += Math.exp(logits[position * vocab + v] - max);
      }
      sum += logits[position * vocab + kept[position + 1]] - max - Math.log(total);
    }
    return sum;
  }

  /** Pairs from TinyStories: a paragraph's first sentences, then its last (of at most 40 tokens). */
  private static List<ContinuationRequest> storyRequests(Tokenizer tokenizer, int count) throws IOException {
    String text = Files.readString(SharedData.path("data/tinystories/tinystories_val_sample.txt"));
    List<ContinuationRequest> requests = new ArrayList<>();
    for (String paragraph : text.split("\n\n")) {
      String[] sentences = paragraph.strip().split("(?<=[.!?]) ");
      if (sentences.length >= 3 && requests.size() < count) {
        String context = String.join(" ", Arrays.copyOf(sentences, sentences.length - 1));
        ContinuationRequest request = ContinuationRequest.encode(tokenizer, context, " " + sentences[sentences.length - 1]);
        if (request.continuation().length <= 40) {
          requests.add(request);
        }
      }
    }
    return requests;
  }

  @Test
  void matchesTheDirectComputationAndTruncatesFromTheLeft() throws IOException {
    ModelArchive archive = archive();
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    List<ContinuationRequest> requests = storyRequests(tokenizer, 12);
    assertThat(requests).hasSize(12);
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      for (int maxLength : new int[] {512, 48}) {
        double[] scored = ContinuationLogLikelihood.score(model, requests, maxLength);
        int truncated = 0;
        for (int r = 0; r < requests.size(); r++) {
          ContinuationRequest request = requests.get(r);
          truncated += request.context().length + request.continuation().length > maxLength + 1 ? 1 : 0;
          assertThat(scored[r]).as("request %d, window %d", r, maxLength)
              .isCloseTo(direct(model, request.context(), request.continuation(), maxLength), Offset.offset(1e-4))
              .isNegative();
        }
        if (maxLength == 48) {
          assertThat(truncated).as("requests cut to the window of 48").isGreaterThan(6);
        }
      }
    }
  }

  @Test
  void aRequestsValueDoesNotDependOnItsCompany() throws IOException {
    ModelArchive archive = archive();
    List<ContinuationRequest> requests = storyRequests(TokenizerLoader.load(archive), 5);
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      double[] together = ContinuationLogLikelihood.score(model, requests, 512);
      for (int r = 0; r < requests.size(); r++) {
        assertThat(ContinuationLogLikelihood.score(model, List.of(requests.get(r)), 512)[0]).isEqualTo(together[r]);
      }
    }
  }

  @Test
  void theWindowDropsTheLastTokenAndKeepsTheNewest() {
    ContinuationRequest request = new ContinuationRequest(new int[] {1, 2, 3, 4}, new int[] {5, 6});
    assertThat(ContinuationLogLikelihood.window(request, 10)).containsExactly(1, 2, 3, 4, 5);
    assertThat(ContinuationLogLikelihood.window(request, 3)).containsExactly(3, 4, 5);
  }

  @Test
  void refusesAContinuationLongerThanTheWindowAndAWindowBeyondTheModel() throws IOException {
    try (DecoderModel model = Models.open(archive(), NetlibLinearAlgebra.defaultInstance())) {
      List<ContinuationRequest> requests = List.of(new ContinuationRequest(new int[] {1}, new int[] {5, 6, 7}));
      assertThatThrownBy(() -> ContinuationLogLikelihood.score(model, requests, 2))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Cannot score a continuation of 3 tokens: longer than the window of 2 tokens");
      assertThatThrownBy(() -> ContinuationLogLikelihood.score(model, requests, 513))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Invalid window length 513: the model supports at most 512 positions");
    }
  }
}
