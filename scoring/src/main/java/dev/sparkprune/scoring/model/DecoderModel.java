package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.ModelLayout;
import java.io.Closeable;
import java.io.IOException;
import java.util.Optional;

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

  /**
   * The mixture of experts of block {@code block}, run apart by expert-parallel calibration;
   * empty for a dense block and for every block of a dense architecture.
   */
  default Optional<MoeBlock> moe(int block) {
    return Optional.empty();
  }

  /**
   * A sparse block's weights without its routed experts (attention, norms, router, shared
   * expert): what the block task of an expert-parallel block holds. A dense block's are all of it.
   */
  default BlockWeights loadBlockWithoutExperts(int block) throws IOException {
    return loadBlock(block);
  }

  /**
   * Routed expert {@code expert} of a sparse block alone: its tensors (for fused experts, its
   * slices under the fused tensors' names), read without the block's other experts; {@link
   * MoeBlock#expertAlone} makes it a function of its rows.
   */
  default BlockWeights loadExpert(int block, int expert) throws IOException {
    throw new UnsupportedOperationException("Block " + block + " of " + layout().modelType() + " has no routed experts");
  }

  /**
   * Runs a sparse block up to its MoE, with the hook on attention's linears: weights need not hold
   * the routed experts. {@link #runBlock} on a sparse block is this, {@link MoeBlock#run} on
   * {@link MoeInput#x}, then {@link MoeInput#finish}.
   */
  default MoeInput attend(BlockWeights weights, HiddenStates input, InputHook hook) {
    throw new UnsupportedOperationException("Block " + weights.block() + " of " + layout().modelType() + " has no mixture of experts");
  }

  /** The MoE input of a sparse block from the residual stream after attention (its post-attention norm). */
  default MoeInput moeInput(BlockWeights weights, HiddenStates residual) {
    throw new UnsupportedOperationException("Block " + weights.block() + " of " + layout().modelType() + " has no mixture of experts");
  }

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
