package dev.sparkprune.scoring.model;

import static java.util.Objects.requireNonNull;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;

/**
 * A context and a continuation as token ids, encoded the way lm-evaluation-harness's
 * {@code HFLM._encode_pair} encodes them: whitespace at the end of the context moves to the
 * start of the continuation, the concatenation is encoded once without special tokens, and the
 * continuation is what follows the context's own encoding length. Encoding the pair whole keeps
 * tokens that span the boundary (a SentencePiece "▁word") as the model saw them in training.
 */
public record ContinuationRequest(int[] context, int[] continuation) {
  public ContinuationRequest {
    requireNonNull(context, "context is null");
    requireNonNull(continuation, "continuation is null");
    ValidationException.check(context.length > 0, "Cannot score a continuation: the context has no tokens");
    ValidationException.check(continuation.length > 0, "Cannot score a continuation: it has no tokens");
  }

  /**
   * Encodes one pair. An empty context scores the continuation after a single prefix token (BOS,
   * or EOS where the tokenizer has no BOS), as lm-evaluation-harness does for unconditional
   * log-likelihoods.
   */
  public static ContinuationRequest encode(Tokenizer tokenizer, String context, String continuation) {
    if (context.isEmpty()) {
      int prefix = tokenizer.bosId() >= 0 ? tokenizer.bosId() : tokenizer.eosId();
      ValidationException.check(prefix >= 0, "Cannot score a continuation without context: the tokenizer has neither BOS nor EOS");
      return new ContinuationRequest(new int[] {prefix}, tokenizer.encode(continuation, false));
    }
    int end = context.length();
    while (end > 0 && isPythonWhitespace(context.codePointBefore(end))) {
      end -= Character.charCount(context.codePointBefore(end));
    }
    String trimmedContext = context.substring(0, end);
    String movedContinuation = context.substring(end) + continuation;
    ValidationException.check(!trimmedContext.isEmpty(), "Cannot score a continuation: the context is only whitespace");
    int[] whole = tokenizer.encode(trimmedContext + movedContinuation, false);
    int contextLength = tokenizer.encode(trimmedContext, false).length;
    ValidationException.check(
        contextLength < whole.length,
        "Cannot score continuation '%s': it adds no tokens to its context",
        continuation);
    int[] contextTokens = java.util.Arrays.copyOf(whole, contextLength);
    int[] continuationTokens = java.util.Arrays.copyOfRange(whole, contextLength, whole.length);
    return new ContinuationRequest(contextTokens, continuationTokens);
  }

  /**
   * Python's {@code str.isspace}, which {@code rstrip()} strips: Java's whitespace plus the
   * no-break spaces (category Zs) and NEL, which Java does not count.
   */
  public static boolean isPythonWhitespace(int codePoint) {
    return Character.isWhitespace(codePoint) || Character.isSpaceChar(codePoint) || codePoint == 0x85;
  }
}
