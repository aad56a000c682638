package dev.sparkprune.scoring.model;

/**
 * The causal-LM loss of one sequence as Hugging Face computes it with {@code labels =
 * input_ids}: the mean over the length - 1 shifted positions of logsumexp(z_t) - z_t[y_{t+1}]
 * (the same sum as {@link DecoderModel#meanNll}); its gradient is (softmax(z_t) - onehot(y_{t+1}))
 * / (length - 1) at those positions and zero at the last.
 */
final class NextTokenLoss {
  private NextTokenLoss() {}

  static double record(Tape tape, float[] logits, int[] tokens, int vocab) {
    int length = tokens.length;
    double sum = 0;
    for (int t = 0; t + 1 < length; t++) {
      sum += Layers.logSumExp(logits, t * vocab, vocab) - logits[t * vocab + tokens[t + 1]];
    }
    double predictions = length - 1;
    tape.step(() -> {
      float[] dz = tape.gradient(logits);
      for (int t = 0; t + 1 < length; t++) {
        int row = t * vocab;
        double logSum = Layers.logSumExp(logits, row, vocab);
        int target = tokens[t + 1];
        for (int j = 0; j < vocab; j++) {
          double probability = Math.exp(logits[row + j] - logSum);
          dz[row + j] += (float) ((j == target ? probability - 1 : probability) / predictions);
        }
      }
    });
    return sum / predictions;
  }
}
