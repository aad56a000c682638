package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.ModelLayout;
import java.io.Closeable;
import java.io.IOException;

/**
 * A decoder-only language model run block by block, in fp32 from F32/F16/BF16 weights. The
 * block granularity is what calibration needs: the job loads one block's weights, runs the
 * batch through it with an {@link InputHook}, prunes it, and runs the batch through the pruned
 * block to feed the next one. Only one block's weights need be in memory at a time.
 */
public interface DecoderModel extends Closeable {
  ModelLayout layout();

  int vocabSize();

  int maxPositions();

  /** Token embeddings (plus learned positions where the architecture has them). */
  HiddenStates embed(int[][] tokens) throws IOException;

  BlockWeights loadBlock(int block) throws IOException;

  /** Runs one block; the hook sees the input of each group of prunable linears. */
  HiddenStates runBlock(BlockWeights weights, HiddenStates input, InputHook hook);

  /** Final norm and LM head: row-major logits [length x vocab] of one sequence. */
  float[] logits(HiddenStates hidden, int sequence) throws IOException;

  /**
   * Mean next-token negative log-likelihood of each sequence over its length - 1 predictions,
   * natural log, computed sequence by sequence so a [tokens x vocab] array never exists.
   */
  default double[] meanNll(HiddenStates hidden, int[][] tokens) throws IOException {
    double[] nll = new double[hidden.sequences()];
    int vocab = vocabSize();
    for (int s = 0; s < hidden.sequences(); s++) {
      float[] logits = logits(hidden, s);
      double sum = 0;
      for (int t = 0; t + 1 < hidden.length(); t++) {
        sum += Layers.logSumExp(logits, t * vocab, vocab) - logits[t * vocab + tokens[s][t + 1]];
      }
      nll[s] = sum / (hidden.length() - 1);
    }
    return nll;
  }

  /** Embeds and runs every block without hooks. */
  default HiddenStates forward(int[][] tokens) throws IOException {
    HiddenStates hidden = embed(tokens);
    for (int b = 0; b < layout().blocks().size(); b++) {
      hidden = runBlock(loadBlock(b), hidden, InputHook.NONE);
    }
    return hidden;
  }
}
