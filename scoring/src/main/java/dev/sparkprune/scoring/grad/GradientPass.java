package dev.sparkprune.scoring.grad;

import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderBackward;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.util.Arrays;

/**
 * Per-sample gradients of the causal-LM loss through the whole dense model, with activation
 * checkpointing at block boundaries, block-major so each block's weights are read twice per call
 * whatever the number of sequences:
 *
 * <ol>
 *   <li>{@link #forward}: embeds every sequence and runs block 0, then 1, ... over all of them,
 *       keeping only each block's input (and the last block's output);
 *   <li>{@link #backward}: the loss and its gradient at the last hidden state of each sequence,
 *       then from the last block to the first: load the block, and for each sequence in index
 *       order recompute its internals from the kept input, send dLoss/dW of each weight matrix to
 *       the sink and pass dLoss/dInput to the block before. A block's checkpoints are freed once
 *       used.
 * </ol>
 *
 * Each sequence runs alone (batch of one), so its gradient depends on nothing else in the call
 * and is bit-identical however the calibration set is split into calls. Memory for n sequences
 * of T tokens, hidden d, L blocks: 4 n (L + 1) T d bytes of checkpoints plus 4 n T d of upstream
 * gradients, one block's weights, and one block's recomputed activations for one sequence.
 */
public final class GradientPass {
  private final DecoderModel model;
  private final DecoderBackward backward;

  private GradientPass(DecoderModel model, DecoderBackward backward) {
    this.model = model;
    this.backward = backward;
  }

  /** The gradient pass of {@code model}; fails naming the model type where there is no backward pass. */
  public static GradientPass of(DecoderModel model) {
    return new GradientPass(model, DecoderBackward.of(model));
  }

  /** The kept block inputs of a forward pass over some sequences. */
  public static final class Checkpoints {
    private final int[][] tokens;
    /** [sequence][block] the block's input; [sequence][blocks] the last block's output. */
    private final HiddenStates[][] states;

    private Checkpoints(int[][] tokens, HiddenStates[][] states) {
      this.tokens = tokens;
      this.states = states;
    }

    public int sequences() {
      return tokens.length;
    }

    /** Bytes held by the checkpoints still alive. */
    public long bytes() {
      long total = 0;
      for (HiddenStates[] sequence : states) {
        for (HiddenStates state : sequence) {
          total += state == null ? 0 : 4L * state.values().length;
        }
      }
      return total;
    }
  }

  /** Runs every sequence through the dense model, keeping each block's input. */
  public Checkpoints forward(int[][] tokens) throws IOException {
    ValidationException.check(tokens.length > 0, "Cannot compute gradients on no calibration sequences");
    int blocks = model.layout().blocks().size();
    HiddenStates[][] states = new HiddenStates[tokens.length][blocks + 1];
    for (int s = 0; s < tokens.length; s++) {
      ValidationException.check(tokens[s].length >= 2, "Cannot compute gradients on sequence %d of %d tokens: need at least 2", s, tokens[s].length);
      states[s][0] = model.embed(new int[][] {tokens[s]});
    }
    for (int b = 0; b < blocks; b++) {
      BlockWeights weights = model.loadBlock(b);
      for (int s = 0; s < tokens.length; s++) {
        states[s][b + 1] = model.runBlock(weights, states[s][b], InputHook.NONE);
      }
    }
    return new Checkpoints(tokens, states);
  }

  /**
   * Backward through every block, last first, consuming the checkpoints; the sink receives each
   * block's per-sequence weight gradients in sequence order. Returns each sequence's loss.
   */
  public double[] backward(Checkpoints checkpoints, GradientSink sink) throws IOException {
    int blocks = model.layout().blocks().size();
    int sequences = checkpoints.sequences();
    double[] losses = new double[sequences];
    float[][] upstream = new float[sequences][];
    for (int s = 0; s < sequences; s++) {
      HiddenStates last = checkpoints.states[s][blocks];
      ValidationException.check(last != null, "Cannot run the backward pass twice on the same checkpoints");
      DecoderBackward.Loss loss = backward.loss(last, checkpoints.tokens[s]);
      losses[s] = loss.value();
      upstream[s] = loss.hiddenGradient();
    }
    for (int b = blocks - 1; b >= 0; b--) {
      BlockWeights weights = model.loadBlock(b);
      int block = b;
      for (int s = 0; s < sequences; s++) {
        int sequence = s;
        HiddenStates input = checkpoints.states[s][b];
        HiddenStates output = checkpoints.states[s][b + 1];
        sink.acceptBlockRemoval(s, b, removalChange(upstream[s], input.values(), output.values()));
        upstream[s] = backward.block(weights, input, upstream[s], (tensor, rows, cols, gradient) -> sink.accept(sequence, block, tensor, rows, cols, gradient));
        checkpoints.states[s][b + 1] = null;
      }
    }
    for (HiddenStates[] sequence : checkpoints.states) {
      Arrays.fill(sequence, null);
    }
    return losses;
  }

  /** dLoss/dOutput . (input - output): the first-order loss change of skipping the block. */
  private static double removalChange(float[] outputGradient, float[] input, float[] output) {
    double sum = 0;
    for (int i = 0; i < outputGradient.length; i++) {
      sum += (double) outputGradient[i] * ((double) input[i] - output[i]);
    }
    return sum;
  }

  /** Forward and backward of {@code tokens} in one call. */
  public double[] run(int[][] tokens, GradientSink sink) throws IOException {
    return backward(forward(tokens), sink);
  }
}
