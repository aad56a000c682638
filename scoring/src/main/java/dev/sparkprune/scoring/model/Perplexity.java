package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Perplexity as the pruning papers measure it (Wanda's and SparseGPT's {@code eval_ppl}): the
 * corpus is tokenized once, cut into n non-overlapping windows of {@code seqlen} tokens (the
 * tail shorter than a window is dropped), each window's mean next-token NLL over its seqlen - 1
 * predictions is scaled by seqlen, and ppl = exp(sum_i(nll_i * seqlen) / (n * seqlen)).
 */
public final class Perplexity {
  private final int windows;
  private final long tokens;
  private final double meanNll;

  private Perplexity(int windows, long tokens, double meanNll) {
    this.windows = windows;
    this.tokens = tokens;
    this.meanNll = meanNll;
  }

  /** Evaluates up to {@code maxWindows} windows, {@code batchSize} windows per forward pass. */
  public static Perplexity evaluate(DecoderModel model, int[] corpus, int seqlen, int maxWindows, int batchSize) throws IOException {
    if (seqlen > model.maxPositions()) {
      throw ValidationException.invalid("window length", seqlen, "the model supports at most %d positions", model.maxPositions());
    }
    List<int[][]> batches = batches(corpus, seqlen, maxWindows, batchSize);
    List<double[]> nll = new ArrayList<>();
    for (int[][] batch : batches) {
      nll.add(model.meanNll(model.forward(batch), batch));
    }
    return of(nll, seqlen);
  }

  /**
   * The windows of up to {@code maxWindows} of {@code seqlen} tokens, {@code batchSize} per batch
   * (the last batch may be shorter): each batch one forward pass, whatever runs it.
   */
  public static List<int[][]> batches(int[] corpus, int seqlen, int maxWindows, int batchSize) {
    if (seqlen < 2) {
      throw ValidationException.invalid("window length", seqlen, "need at least 2 tokens per window");
    }
    ValidationException.check(batchSize >= 1, "Invalid batch size %d", batchSize);
    int windows = Math.min(corpus.length / seqlen, maxWindows);
    ValidationException.check(
        windows > 0, "Cannot evaluate perplexity: the text has %d tokens, fewer than one window of %d", corpus.length, seqlen);
    List<int[][]> batches = new ArrayList<>();
    for (int first = 0; first < windows; first += batchSize) {
      int count = Math.min(batchSize, windows - first);
      int[][] batch = new int[count][];
      for (int i = 0; i < count; i++) {
        batch[i] = Arrays.copyOfRange(corpus, (first + i) * seqlen, (first + i + 1) * seqlen);
      }
      batches.add(batch);
    }
    return batches;
  }

  /**
   * Perplexity from each batch's per-window mean NLL ({@link DecoderModel#meanNll}), batches in
   * order: summed in window order, so any runner of the same batches gives the same bits.
   */
  public static Perplexity of(List<double[]> batchNll, int seqlen) {
    double nllTimesSeqlen = 0;
    int windows = 0;
    for (double[] batch : batchNll) {
      for (double nll : batch) {
        nllTimesSeqlen += nll * seqlen;
        windows++;
      }
    }
    ValidationException.check(windows > 0, "Cannot evaluate perplexity: no window");
    return new Perplexity(windows, (long) windows * seqlen, nllTimesSeqlen / ((double) windows * seqlen));
  }

  public int windows() {
    return windows;
  }

  /** Tokens evaluated: windows x seqlen. */
  public long tokens() {
    return tokens;
  }

  public double meanNll() {
    return meanNll;
  }

  public double perplexity() {
    return Math.exp(meanNll);
  }
}
