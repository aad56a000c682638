package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.util.List;

/**
 * The backward pass of a {@link DecoderModel}, one sequence and one block at a time, for
 * checkpointed gradients: the caller keeps only each block's input from the forward pass
 * ({@link DecoderModel#runBlock}); {@link #block} recomputes the block's internals from it, sends
 * dLoss/dW of every weight matrix the block multiplies with to a sink, and returns dLoss/dInput
 * for the block before it. The loss is the causal-LM cross-entropy of the sequence, the mean
 * over its length - 1 shifted tokens, as Hugging Face computes it with {@code labels =
 * input_ids}.
 *
 * <p>The recomputation uses the forward's own kernels in the same order, so it reproduces
 * {@link DecoderModel#runBlock}'s output bit for bit; everything is float32 as the forward, with
 * per-row reductions (norms, softmax) in double.
 */
public interface DecoderBackward {
  /** The model types with a backward pass. */
  List<String> MODEL_TYPES = List.of(
      "llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe", "gemma2", "gemma3", "gemma3_text", "phi3", "gpt2", "opt",
      "gpt_neox");

  /** A sequence's loss and dLoss/dHidden of the last block's output, [length x hidden]. */
  record Loss(double value, float[] hiddenGradient) {}

  static boolean supports(String modelType) {
    return MODEL_TYPES.contains(modelType);
  }

  /** The backward pass of {@code model}; fails for model types without one. */
  static DecoderBackward of(DecoderModel model) {
    String type = model.layout().modelType();
    ValidationException.check(
        supports(type), "Cannot compute gradients: model_type '%s' has no backward pass (supported: %s)", type, String.join(", ", MODEL_TYPES));
    if (model instanceof LlamaModel) {
      return new LlamaBackward((LlamaModel) model);
    } else if (model instanceof GemmaModel) {
      return new GemmaBackward((GemmaModel) model);
    } else if (model instanceof Phi3Model) {
      return new Phi3Backward((Phi3Model) model);
    } else if (model instanceof Gpt2Model) {
      return new Gpt2Backward((Gpt2Model) model);
    } else if (model instanceof OptModel) {
      return new OptBackward((OptModel) model);
    } else if (model instanceof GptNeoxModel) {
      return new GptNeoxBackward((GptNeoxModel) model);
    }
    throw new ValidationException("Cannot compute gradients: " + model.getClass().getSimpleName() + " has no backward pass");
  }

  /** The loss of one sequence from the last block's output {@code hidden} (one sequence) and its gradient. */
  Loss loss(HiddenStates hidden, int[] tokens) throws IOException;

  /**
   * Recomputes block {@code weights.block()} on {@code input} (one sequence), propagates
   * {@code outputGradient} (dLoss/dOutput, [length x hidden]) back through it, gives the sink
   * dLoss/dW of each weight it multiplies with (the layout's linears, and a MoE block's router and
   * shared-expert gate), and returns dLoss/dInput.
   */
  float[] block(BlockWeights weights, HiddenStates input, float[] outputGradient, WeightGradientSink sink);

  /** The block's output as the backward recomputes it (for checks against {@link DecoderModel#runBlock}). */
  HiddenStates recompute(BlockWeights weights, HiddenStates input);
}
