package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.util.List;

/**
 * log P(continuation | context) as lm-evaluation-harness's {@code _loglikelihood_tokens} computes
 * it for a decoder: the input is context ++ continuation cut to its last maxLength + 1 tokens
 * (truncated from the left) without the last token; the log-softmax at the last
 * |continuation| positions is read at the continuation's tokens and summed (natural log).
 *
 * <p>Requests run block by block: each block's weights are read once per call and every request
 * goes through it alone, as a batch of one, so a request's value depends neither on which other
 * requests share the call nor on how callers group them.
 */
public final class ContinuationLogLikelihood {
  private ContinuationLogLikelihood() {}

  /** The model's input window of one request (see the class comment). */
  public static int[] window(ContinuationRequest request, int maxLength) {
    int[] context = request.context();
    int[] continuation = request.continuation();
    int total = context.length + continuation.length;
    int start = Math.max(0, total - (maxLength + 1));
    int[] window = new int[total - 1 - start];
    for (int i = 0; i < window.length; i++) {
      int position = start + i;
      window[i] = position < context.length ? context[position] : continuation[position - context.length];
    }
    return window;
  }

  /**
   * The summed log-likelihood of each request's continuation. Memory: one block's weights and the
   * hidden states of all requests of the call; callers bound the latter by the size of the list.
   */
  public static double[] score(DecoderModel model, List<ContinuationRequest> requests, int maxLength) throws IOException {
    if (maxLength < 1) {
      throw ValidationException.invalid("window length", maxLength, "must be at least 1");
    }
    if (maxLength > model.maxPositions()) {
      throw ValidationException.invalid("window length", maxLength, "the model supports at most %d positions", model.maxPositions());
    }
    HiddenStates[] hidden = new HiddenStates[requests.size()];
    for (int r = 0; r < hidden.length; r++) {
      int length = requests.get(r).continuation().length;
      ValidationException.check(
          length <= maxLength,
          "Cannot score a continuation of %d tokens: longer than the window of %d tokens",
          length,
          maxLength);
      hidden[r] = model.embed(new int[][] {window(requests.get(r), maxLength)});
    }
    for (int b = 0; b < model.layout().blocks().size(); b++) {
      BlockWeights weights = model.loadBlock(b);
      for (int r = 0; r < hidden.length; r++) {
        hidden[r] = model.runBlock(weights, hidden[r], InputHook.NONE);
      }
    }
    double[] logLikelihoods = new double[hidden.length];
    for (int r = 0; r < hidden.length; r++) {
      logLikelihoods[r] = continuationSum(model.logits(hidden[r], 0), model.vocabSize(), hidden[r].length(), requests.get(r).continuation());
      hidden[r] = null; // Let the group's activations go as soon as they are read.
    }
    return logLikelihoods;
  }

  /** The continuation's tokens are predicted by the last |continuation| rows of the window's logits. */
  private static double continuationSum(float[] logits, int vocab, int length, int[] continuation) {
    int first = length - continuation.length;
    double sum = 0;
    for (int i = 0; i < continuation.length; i++) {
      int row = (first + i) * vocab;
      sum += logits[row + continuation[i]] - Layers.logSumExp(logits, row, vocab);
    }
    return sum;
  }
}
