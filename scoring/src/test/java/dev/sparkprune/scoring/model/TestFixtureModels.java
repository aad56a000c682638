package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.assertj.core.data.Offset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The architecture fixtures of ../shared/fixtures/models against their golden logits, computed
 * in float64 by an independent implementation of Hugging Face's modeling code.
 */
class TestFixtureModels {
  static final LocalFileIO IO = new LocalFileIO();

  static DecoderModel open(String arch) throws IOException {
    return Models.open(ModelArchive.open(IO, ModelFixtures.path(arch).toString()), NetlibLinearAlgebra.defaultInstance());
  }

  static int[] goldenTokens(String arch) throws IOException {
    return ModelFixtures.goldenTokens(arch);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"llama", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "glm4_moe", "gpt_oss"})
  void logitsMatchTheGoldenForwardPass(String arch) throws IOException {
    int[] tokens = goldenTokens(arch);
    float[] expected = ModelFixtures.goldenLogits(arch);
    assertThat(tokens).hasSize(64);
    try (DecoderModel model = open(arch)) {
      float[] logits = model.logits(model.forward(new int[][] {tokens}), 0);
      assertThat(logits).hasSameSizeAs(expected);
      double worst = 0;
      int at = -1;
      for (int i = 0; i < logits.length; i++) {
        double error = Math.abs(logits[i] - (double) expected[i]);
        if (error > worst) {
          worst = error;
          at = i;
        }
      }
      System.out.printf("%s: largest |logit - golden| = %.3g%n", arch, worst);
      assertThat(worst).as("%s: largest |logit - golden| at position %d, vocab %d", arch, at / 512, at % 512).isLessThanOrEqualTo(1e-4);
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"llama", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "glm4_moe", "gpt_oss"})
  void laterTokensNeverChangeEarlierLogitsAndBatchingStaysWithinTolerance(String arch) throws IOException {
    int[] golden = goldenTokens(arch);
    int[][] batch = {golden.clone(), golden.clone(), golden.clone()};
    batch[1][40] = (batch[1][40] + 7) % 512;
    for (int t = 0; t < 64; t++) {
      batch[2][t] = golden[63 - t];
    }
    try (DecoderModel model = open(arch)) {
      HiddenStates hidden = model.forward(batch);
      float[] original = model.logits(hidden, 0);
      float[] changed = model.logits(hidden, 1);
      for (int i = 0; i < 40 * 512; i++) {
        assertThat(changed[i]).as("%s logit %d before the changed token", arch, i).isCloseTo(original[i], Offset.offset(1e-4f));
      }
      double later = 0;
      for (int i = 40 * 512; i < 64 * 512; i++) {
        later = Math.max(later, Math.abs(changed[i] - original[i]));
      }
      assertThat(later).as("%s: a changed token changes its own and later logits", arch).isGreaterThan(1e-3);
      float[] alone = model.logits(model.forward(new int[][] {batch[2]}), 0);
      float[] batched = model.logits(hidden, 2);
      for (int i = 0; i < alone.length; i++) {
        assertThat(batched[i]).as("%s batched vs alone %d", arch, i).isCloseTo(alone[i], Offset.offset(1e-4f));
      }
    }
  }

  /** gpt-oss's fused experts have no prunable linears to hook: TestMoeBlock covers its routing. */
  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "glm4_moe"})
  void aRoutedExpertSeesExactlyItsTokensAndEveryLinearIsHookedOnce(String arch) throws IOException {
    try (DecoderModel model = open(arch)) {
      MixtureOfExperts moe = MixtureOfExperts.of(config(model)).orElseThrow();
      HiddenStates hidden = model.embed(new int[][] {goldenTokens(arch)});
      for (int b = 0; b < model.layout().blocks().size(); b++) {
        BlockWeights weights = model.loadBlock(b);
        if (!moe.isSparse(b)) {
          hidden = model.runBlock(weights, hidden, InputHook.NONE);
          continue;
        }
        int[][] routed = routed(weights, moe, moeInput(model, weights, hidden), 64);
        int[] counts = new int[moe.experts()];
        int[] hiddenCounts = new int[moe.experts()];
        List<Linear> seen = new ArrayList<>();
        HiddenStates next = model.runBlock(weights, hidden, (linears, input, tokens, sequences) -> {
          seen.addAll(linears);
          assertThat(sequences).isEqualTo(1);
          assertThat(input.length).isEqualTo(tokens * (int) linears.get(0).inFeatures());
          Linear first = linears.get(0);
          if (first.isRoutedExpert()) {
            int[] target = first.inputGroup().endsWith(".hidden") ? hiddenCounts : counts;
            target[first.expert().get().index()] = tokens;
          } else {
            assertThat(tokens).as("%s: %s sees every token", arch, first.name()).isEqualTo(64);
          }
        });
        assertThat(seen).containsExactlyElementsOf(model.layout().blocks().get(b).linears());
        for (int e = 0; e < moe.experts(); e++) {
          assertThat(counts[e]).as("%s block %d expert %d tokens", arch, b, e).isEqualTo(routed[e].length);
          assertThat(hiddenCounts[e]).as("%s block %d expert %d hidden rows", arch, b, e).isEqualTo(routed[e].length);
        }
        assertThat(Arrays.stream(counts).sum()).isEqualTo(64 * moe.topK());
        hidden = next;
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "glm4_moe"})
  void aTokensOutputChangesOnlyThroughItsOwnExperts(String arch) throws IOException {
    try (DecoderModel model = open(arch)) {
      MixtureOfExperts moe = MixtureOfExperts.of(config(model)).orElseThrow();
      int[] tokens = goldenTokens(arch);
      // The first sparse block, fed the embeddings: any input shows locality.
      BlockWeights weights = model.loadBlock(moe.firstSparseBlock());
      int hiddenWidth = model.embed(new int[][] {tokens}).width();
      HiddenStates input = model.embed(new int[][] {tokens});
      int[][] routed = routed(weights, moe, moeInput(model, weights, input), 64);
      float[] dense = model.runBlock(weights, input, InputHook.NONE).values();

      // Zeroing a chosen expert changes exactly the tokens routed to it.
      int chosen = 0;
      for (int e = 1; e < moe.experts(); e++) {
        chosen = routed[e].length > routed[chosen].length ? e : chosen;
      }
      float[] zeroed = model.runBlock(zeroExpert(model, weights, moe, chosen), input, InputHook.NONE).values();
      Set<Integer> routedToChosen = new HashSet<>();
      Arrays.stream(routed[chosen]).forEach(routedToChosen::add);
      for (int t = 0; t < 64; t++) {
        float[] before = Arrays.copyOfRange(dense, t * hiddenWidth, (t + 1) * hiddenWidth);
        float[] after = Arrays.copyOfRange(zeroed, t * hiddenWidth, (t + 1) * hiddenWidth);
        if (routedToChosen.contains(t)) {
          assertThat(after).as("%s token %d routed to expert %d", arch, t, chosen).isNotEqualTo(before);
        } else {
          assertThat(after).as("%s token %d not routed to expert %d", arch, t, chosen).isEqualTo(before);
        }
      }

      // An expert no token of a prefix routes to changes nothing for that prefix.
      for (int length = 64; length >= 2; length--) {
        int[][] prefixRouting = routed(weights, moe, Arrays.copyOf(moeInput(model, weights, input), length * hiddenWidth), length);
        for (int e = 0; e < moe.experts(); e++) {
          if (prefixRouting[e].length == 0) {
            HiddenStates prefix = model.embed(new int[][] {Arrays.copyOf(tokens, length)});
            float[] expected = model.runBlock(weights, prefix, InputHook.NONE).values();
            assertThat(model.runBlock(zeroExpert(model, weights, moe, e), prefix, InputHook.NONE).values()).isEqualTo(expected);
            return;
          }
        }
      }
      throw new AssertionError(arch + ": every prefix uses every expert; the test needs another token sequence");
    }
  }

  private static dev.sparkprune.tensorio.archive.ModelConfig config(DecoderModel model) throws IOException {
    return ((BaseDecoderModel) model).weights.archive().config();
  }

  /** Routing computed in double from block b's router (and correction bias) on the MoE input x. */
  private static int[][] routed(BlockWeights weights, MixtureOfExperts moe, float[] x, int tokens) {
    String block = "model.layers." + weights.block() + ".";
    float[] correction = moe.correctionBias().map(name -> weights.tensor(block + name)).orElse(new float[0]);
    return ModelFixtures.routedRows(x, weights.tensor(block + moe.router() + ".weight"), new float[0], correction, tokens, moe);
  }

  /** The sparse MLP's input (every token), as the all-tokens hook hands it to expert 0's gate and up. */
  private static float[] moeInput(DecoderModel model, BlockWeights weights, HiddenStates hidden) {
    float[][] captured = new float[1][];
    model.runBlock(weights, hidden, new InputHook() {
      @Override
      public void accept(List<Linear> linears, float[] input, int tokens, int sequences) {
        Linear first = linears.get(0);
        if (first.isRoutedExpert() && first.expert().get().index() == 0 && first.inFeatures() == hidden.width()) {
          captured[0] = input.clone();
        }
      }

      @Override
      public ExpertInputs expertInputs() {
        return ExpertInputs.ALL;
      }
    });
    return captured[0];
  }

  private static BlockWeights zeroExpert(DecoderModel model, BlockWeights weights, MixtureOfExperts moe, int expert) {
    BlockWeights zeroed = weights;
    for (int p = 0; p < 3; p++) {
      String name = "model.layers." + weights.block() + "." + moe.expertLinear(expert, p) + ".weight";
      zeroed = zeroed.withTensor(name, new float[weights.tensor(name).length]);
    }
    return zeroed;
  }
}
