package dev.sparkprune.scoring.grad;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Per-sample loss gradients of every weight in the decoder blocks against torch.autograd over
 * Hugging Face transformers' modeling code in float64 (bin/setup-torch-reference), on the
 * architecture fixtures, stories260K, and random models of the families without a fixture.
 */
class TestBackwardAgainstTorch {
  /** Float32 forward and backward against float64: relative to the tensor's largest gradient. */
  private static final double RELATIVE = 5e-5;

  static DecoderModel open(String name) throws IOException {
    Path path;
    if (name.equals("stories260K")) {
      path = SharedData.stories260K();
    } else if (Set.of("mistral", "qwen2", "gpt2", "opt", "gpt_neox").contains(name)) {
      path = TorchReference.model(name);
    } else {
      path = ModelFixtures.path(name);
    }
    return Models.open(ModelArchive.open(new LocalFileIO(), path.toString()), NetlibLinearAlgebra.defaultInstance());
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {
      "llama", "qwen3", "gemma2", "gemma3", "phi3", "mixtral", "qwen2_moe", "qwen3_moe", "stories260K", "mistral", "qwen2", "gpt2", "opt",
      "gpt_neox"})
  void perSampleGradientsMatchAutogradInFloat64(String name) throws IOException {
    try (TorchReference reference = TorchReference.open(name); DecoderModel model = open(name)) {
      int[][] tokens = reference.tokens();
      Map<String, float[]> gradients = new HashMap<>();
      double[] losses = GradientPass.of(model).run(tokens, (sequence, block, tensor, rows, cols, gradient) -> {
        gradients.put("grad." + sequence + "." + tensor, gradient.clone());
      });
      double[] expectedLosses = reference.doubles("loss");
      for (int s = 0; s < tokens.length; s++) {
        assertThat(losses[s]).as("%s loss of sequence %d", name, s).isCloseTo(expectedLosses[s], org.assertj.core.data.Offset.offset(1e-5 * expectedLosses[s]));
      }
      int compared = 0;
      for (String key : reference.names()) {
        if (!key.startsWith("grad.")) {
          continue;
        }
        assertThat(gradients).as("%s: the backward pass gives %s", name, key).containsKey(key);
        double[] expected = reference.doubles(key);
        float[] actual = gradients.get(key);
        assertThat(actual).as(key).hasSize(expected.length);
        double scale = 0;
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
          scale = Math.max(scale, Math.abs(expected[i]));
          worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
        }
        assertThat(worst).as("%s: largest |dW - autograd| of %s (largest |autograd| %s)", name, key, scale).isLessThanOrEqualTo(RELATIVE * scale + 1e-9);
        compared++;
      }
      // Every prunable linear of every block has a reference, for every sequence.
      for (Linear linear : model.layout().linears()) {
        for (int s = 0; s < tokens.length; s++) {
          assertThat(reference.contains("grad." + s + "." + linear.tensorName())).as("%s: reference for %s", name, linear.tensorName()).isTrue();
        }
      }
      assertThat(compared).isGreaterThanOrEqualTo(model.layout().linears().size() * tokens.length);
    }
  }
}
