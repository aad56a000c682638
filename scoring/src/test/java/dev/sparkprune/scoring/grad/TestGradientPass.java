package dev.sparkprune.scoring.grad;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderBackward;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.function.IntFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The gradient pass against its own model's forward, without PyTorch: central finite differences
 * of the float32 loss, the recomputed block against runBlock bit for bit, the block-removal
 * estimate against a directional derivative, and per-sample results independent of the batch.
 */
class TestGradientPass {
  static DecoderModel open(String arch) throws IOException {
    return Models.open(ModelArchive.open(new LocalFileIO(), ModelFixtures.path(arch).toString()), NetlibLinearAlgebra.defaultInstance());
  }

  /** The float32 loss of one sequence with each block's weights from {@code weights}. */
  static double loss(DecoderModel model, int[] tokens, IntFunction<BlockWeights> weights) throws IOException {
    HiddenStates hidden = model.embed(new int[][] {tokens});
    for (int b = 0; b < model.layout().blocks().size(); b++) {
      hidden = model.runBlock(weights.apply(b), hidden, InputHook.NONE);
    }
    return model.meanNll(hidden, new int[][] {tokens})[0];
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"llama", "gemma2", "phi3", "qwen2_moe"})
  void gradientsMatchCentralFiniteDifferencesOfTheForward(String arch) throws IOException {
    try (DecoderModel model = open(arch)) {
      int[] tokens = Arrays.copyOf(ModelFixtures.goldenTokens(arch), 32);
      Map<String, float[]> gradients = new HashMap<>();
      GradientPass.of(model).run(new int[][] {tokens}, (sequence, block, tensor, rows, cols, gradient) -> gradients.put(tensor, gradient.clone()));
      int checked = 0;
      for (Linear linear : model.layout().linears()) {
        float[] g = gradients.get(linear.tensorName());
        if (linear.isRoutedExpert() || linear.block() % 2 == 1) {
          continue; // Routed experts: a nudge may flip a routing choice. Every other block keeps the test lean.
        }
        int at = 0;
        for (int i = 1; i < g.length; i++) {
          at = Math.abs(g[i]) > Math.abs(g[at]) ? i : at;
        }
        int index = at;
        BlockWeights original = model.loadBlock(linear.block());
        float[] w = original.tensor(linear.tensorName());
        float step = 1e-2f;
        double[] sides = new double[2];
        for (int side = 0; side < 2; side++) {
          float[] nudged = w.clone();
          nudged[index] += side == 0 ? step : -step;
          BlockWeights changed = original.withTensor(linear.tensorName(), nudged);
          sides[side] = loss(model, tokens, b -> b == linear.block() ? changed : load(model, b));
        }
        double difference = (sides[0] - sides[1]) / (2 * step);
        assertThat(difference).as("%s dL/dW%d of %s (backward %s)", arch, index, linear.tensorName(), g[index])
            .isCloseTo(g[index], org.assertj.core.data.Offset.offset(0.02 * Math.abs(g[index]) + 2e-4));
        checked++;
      }
      assertThat(checked).isGreaterThan(4);
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"llama", "qwen3", "gemma2", "gemma3", "phi3", "mixtral", "qwen2_moe", "qwen3_moe"})
  void recomputedBlocksEqualTheForwardBitForBit(String arch) throws IOException {
    try (DecoderModel model = open(arch)) {
      DecoderBackward backward = DecoderBackward.of(model);
      HiddenStates hidden = model.embed(new int[][] {ModelFixtures.goldenTokens(arch)});
      for (int b = 0; b < model.layout().blocks().size(); b++) {
        BlockWeights weights = model.loadBlock(b);
        HiddenStates forward = model.runBlock(weights, hidden, InputHook.NONE);
        assertThat(backward.recompute(weights, hidden).values()).as("%s block %d", arch, b).isEqualTo(forward.values());
        hidden = forward;
      }
    }
  }

  @Test
  void blockRemovalChangeIsTheDirectionalDerivativeOfShrinkingTheResidualBranch() throws IOException {
    try (DecoderModel model = open("llama")) {
      int[] tokens = Arrays.copyOf(ModelFixtures.goldenTokens("llama"), 32);
      double[] changes = new double[model.layout().blocks().size()];
      GradientPass.of(model).run(new int[][] {tokens}, new GradientSink() {
        @Override
        public void accept(int sequence, int block, String tensor, int rows, int cols, float[] gradient) {}

        @Override
        public void acceptBlockRemoval(int sequence, int block, double firstOrderChange) {
          changes[block] = firstOrderChange;
        }
      });
      for (int block = 0; block < changes.length; block++) {
        // output(e) = output - e (output - input): e = 1 drops the block; dL/de at 0 is the estimate.
        double[] sides = new double[2];
        for (int side = 0; side < 2; side++) {
          double e = side == 0 ? 1e-2 : -1e-2;
          sides[side] = lossWithScaledBranch(model, tokens, block, e);
        }
        double derivative = (sides[0] - sides[1]) / 2e-2;
        assertThat(changes[block]).as("block %d", block).isCloseTo(derivative, org.assertj.core.data.Offset.offset(0.02 * Math.abs(derivative) + 1e-4));
      }
    }
  }

  private static double lossWithScaledBranch(DecoderModel model, int[] tokens, int block, double e) throws IOException {
    HiddenStates hidden = model.embed(new int[][] {tokens});
    for (int b = 0; b < model.layout().blocks().size(); b++) {
      HiddenStates next = model.runBlock(model.loadBlock(b), hidden, InputHook.NONE);
      if (b == block) {
        float[] values = next.values().clone();
        for (int i = 0; i < values.length; i++) {
          values[i] -= (float) (e * (next.values()[i] - hidden.values()[i]));
        }
        next = new HiddenStates(1, tokens.length, next.width(), values);
      }
      hidden = next;
    }
    return model.meanNll(hidden, new int[][] {tokens})[0];
  }

  @Test
  void aSequenceGradientIsTheSameAloneOrAmongOthers() throws IOException {
    try (DecoderModel model = open("qwen2_moe")) {
      int[] golden = ModelFixtures.goldenTokens("qwen2_moe");
      int[][] batch = {Arrays.copyOf(golden, 40), Arrays.copyOfRange(golden, 10, 50), Arrays.copyOfRange(golden, 20, 60)};
      Map<String, float[]> together = new HashMap<>();
      GradientPass pass = GradientPass.of(model);
      double[] losses = pass.run(batch, (sequence, block, tensor, rows, cols, gradient) -> {
        if (sequence == 1) {
          together.put(tensor, gradient.clone());
        }
      });
      Map<String, float[]> alone = new HashMap<>();
      double[] single = pass.run(new int[][] {batch[1]}, (sequence, block, tensor, rows, cols, gradient) -> alone.put(tensor, gradient.clone()));
      assertThat(single[0]).isEqualTo(losses[1]);
      assertThat(alone.keySet()).isEqualTo(together.keySet());
      alone.forEach((tensor, gradient) -> assertThat(gradient).as(tensor).isEqualTo(together.get(tensor)));
    }
  }

  @Test
  void checkpointsAreConsumedOnce() throws IOException {
    try (DecoderModel model = open("llama")) {
      GradientPass pass = GradientPass.of(model);
      GradientPass.Checkpoints checkpoints = pass.forward(new int[][] {Arrays.copyOf(ModelFixtures.goldenTokens("llama"), 16)});
      assertThat(checkpoints.bytes()).isEqualTo(4L * (3 + 1) * 16 * 64);
      pass.backward(checkpoints, (sequence, block, tensor, rows, cols, gradient) -> {});
      assertThat(checkpoints.bytes()).isZero();
      assertThatThrownBy(() -> pass.backward(checkpoints, (sequence, block, tensor, rows, cols, gradient) -> {}))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Cannot run the backward pass twice on the same checkpoints");
      assertThatThrownBy(() -> pass.forward(new int[][] {{1}}))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Cannot compute gradients on sequence 0 of 1 tokens: need at least 2");
    }
  }

  private static BlockWeights load(DecoderModel model, int block) {
    try {
      return model.loadBlock(block);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
