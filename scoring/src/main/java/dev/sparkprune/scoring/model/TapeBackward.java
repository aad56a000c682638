package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Linear;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

/**
 * A backward pass from a family's forward written once more as {@link Tape} ops: the block and
 * the head (final norm, LM head) each recorded, then replayed in reverse.
 */
abstract class TapeBackward implements DecoderBackward {
  private final BaseDecoderModel model;

  TapeBackward(BaseDecoderModel model) {
    this.model = model;
  }

  /** The block's output from its input, as the model's runBlock computes it. */
  abstract float[] block(Tape tape, BlockWeights weights, HiddenStates input);

  /** Logits [length x vocab] of one sequence's final hidden states. */
  abstract float[] logits(Tape tape, float[] hidden, int length) throws IOException;

  @Override
  public Loss loss(HiddenStates hidden, int[] tokens) throws IOException {
    checkOneSequence(hidden, tokens.length);
    ValidationException.check(tokens.length >= 2, "Cannot compute a loss gradient on a sequence of %d tokens: need at least 2", tokens.length);
    Tape tape = new Tape(model.linalg, WeightGradientSink.NONE);
    float[] logits = logits(tape, hidden.values(), hidden.length());
    double loss = tape.nextTokenLoss(logits, tokens, model.vocabSize());
    tape.backward();
    return new Loss(loss, tape.gradient(hidden.values()));
  }

  @Override
  public float[] block(BlockWeights weights, HiddenStates input, float[] outputGradient, WeightGradientSink sink) {
    checkOneSequence(input, input.length());
    ValidationException.check(
        outputGradient.length == input.values().length,
        "Invalid output gradient: %d values for %d tokens x %d",
        outputGradient.length, input.tokens(), input.width());
    Tape tape = new Tape(model.linalg, sink);
    float[] output = block(tape, weights, input);
    tape.backward(output, outputGradient);
    return tape.gradient(input.values());
  }

  @Override
  public HiddenStates recompute(BlockWeights weights, HiddenStates input) {
    float[] output = block(new Tape(model.linalg, WeightGradientSink.NONE), weights, input);
    return new HiddenStates(input.sequences(), input.length(), input.width(), output);
  }

  private static void checkOneSequence(HiddenStates hidden, int length) {
    // Per-sample gradients: one sequence per call, so a sample's gradient never depends on its batch.
    ValidationException.check(hidden.sequences() == 1, "Cannot run the backward pass on %d sequences at once: pass one", hidden.sequences());
    ValidationException.check(hidden.length() == length, "Invalid tokens: %d for hidden states of %d positions", length, hidden.length());
  }

  Map<String, Linear> linearsByName(int block) {
    Map<String, Linear> byName = new HashMap<>();
    model.layout.blocks().get(block).linears().forEach(linear -> byName.put(linear.name(), linear));
    return byName;
  }

  /** The LM head: lm_head.weight, or the tied embedding. */
  float[] head(String tiedName) throws IOException {
    return model.weights.cached(model.weights.contains("lm_head.weight") ? "lm_head.weight" : tiedName);
  }
}
