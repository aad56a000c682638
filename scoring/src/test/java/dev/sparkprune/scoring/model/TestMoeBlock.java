package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The MoE block's four steps on every MoE fixture: routing equals a float64 computation from
 * the router weights for each router family, and the experts computed apart, each from its own
 * weights only, in any order, then combined give the same bits as the block run in one go.
 */
class TestMoeBlock {
  private static final LinearAlgebra LINALG = NetlibLinearAlgebra.defaultInstance();
  private static final int TOKENS = 48;

  /** A normed-scale MoE input: rows of a standard normal. */
  private static float[] input(int hidden, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] x = new float[TOKENS * hidden];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (Math.sqrt(-2 * Math.log(1 - random.nextDouble())) * Math.cos(2 * Math.PI * random.nextDouble()));
    }
    return x;
  }

  private static MixtureOfExperts moe(DecoderModel model) {
    return MixtureOfExperts.of(((BaseDecoderModel) model).weights.archive().config()).orElseThrow();
  }

  private static MoeBlock block(DecoderModel model, int b) throws IOException {
    int hidden = model.embed(new int[][] {{1}}).width();
    return MoeBlock.of(LINALG, moe(model), model.layout().blocks().get(b), "model.layers." + b + ".", hidden);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "glm4_moe", "gpt_oss"})
  void routingEqualsAFloat64ComputationFromTheRouterWeights(String arch) throws IOException {
    try (DecoderModel model = TestFixtureModels.open(arch)) {
      MixtureOfExperts moe = moe(model);
      for (int b = moe.firstSparseBlock(); b < model.layout().blocks().size(); b++) {
        BlockWeights w = model.loadBlock(b);
        MoeBlock block = block(model, b);
        String prefix = "model.layers." + b + ".";
        int hidden = w.tensor(prefix + moe.router() + ".weight").length / moe.experts();
        float[] x = input(hidden, b);
        ExpertRouting routing = block.route(w, x, TOKENS);
        double[][] expected = ModelFixtures.routingWeights(
            x, w.tensor(prefix + moe.router() + ".weight"), moe.routerBias().map(name -> w.tensor(prefix + name)).orElse(new float[0]),
            moe.correctionBias().map(name -> w.tensor(prefix + name)).orElse(new float[0]), TOKENS, moe);
        int routed = 0;
        for (int e = 0; e < moe.experts(); e++) {
          int[] rows = routing.rows(e);
          float[] weights = routing.weights(e);
          routed += rows.length;
          for (int t = 0; t < TOKENS; t++) {
            int i = Arrays.binarySearch(rows, t);
            if (expected[t][e] == 0) {
              assertThat(i).as("%s block %d: token %d is not routed to expert %d", arch, b, t, e).isNegative();
            } else {
              assertThat(i).as("%s block %d: token %d is routed to expert %d", arch, b, t, e).isNotNegative();
              assertThat((double) weights[i]).as("%s block %d token %d expert %d weight", arch, b, t, e)
                  .isCloseTo(expected[t][e], org.assertj.core.data.Offset.offset(1e-6 * Math.max(1, expected[t][e])));
            }
          }
        }
        assertThat(routed).isEqualTo(TOKENS * moe.topK());
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"mixtral", "qwen2_moe", "deepseek_v3", "glm4_moe", "gpt_oss"})
  void expertsComputedApartFromTheirOwnWeightsAndCombinedInOrderGiveTheSameBits(String arch) throws IOException {
    try (DecoderModel model = TestFixtureModels.open(arch)) {
      MixtureOfExperts moe = moe(model);
      int b = moe.firstSparseBlock();
      BlockWeights w = model.loadBlock(b);
      MoeBlock block = block(model, b);
      int hidden = w.tensor("model.layers." + b + "." + moe.router() + ".weight").length / moe.experts();
      float[] x = input(hidden, 7);
      float[] whole = block.run(w, x, TOKENS, 1, InputHook.NONE);

      // Steps 1-2 where the block's input is; step 3 on two "tasks", each holding half the
      // experts, computed in reverse order; step 4 on the outputs sorted by expert.
      ExpertRouting routing = block.route(w, x, TOKENS);
      Map<Integer, float[]> outputs = new HashMap<>();
      for (int task = 0; task < 2; task++) {
        List<Integer> group = new ArrayList<>();
        for (int e = moe.experts() - 1; e >= 0; e--) {
          if (e % 2 == task) {
            group.add(e);
          }
        }
        for (int e : group) {
          RoutedExpert expert = moe.fused() ? fusedExpertReadAlone(model, b, e, hidden, moe) : block.expert(onlyExpert(w, b, e, moe), e);
          int[] rows = routing.rows(e);
          outputs.put(e, expert.apply(LINALG, ExpertRouting.gather(x, rows, hidden), rows.length, 1, InputHook.NONE));
        }
      }
      ExpertCombiner combiner = new ExpertCombiner(routing, hidden);
      new TreeMap<>(outputs).forEach(combiner::add);
      float[] split = combiner.result();
      block.addShared(w, x, TOKENS, 1, InputHook.NONE, split);
      assertThat(split).as("%s: experts computed apart and combined in order", arch).isEqualTo(whole);
    }
  }

  /**
   * gpt-oss's experts as prunable linears: the hook gives each expert's gate and up (one input
   * group) exactly the rows routed to it, and its down the clamped SwiGLU of those rows, here
   * computed in float64 from the fused tensors as transformers' GptOssExperts does (gate =
   * gate_up[..., ::2], up = gate_up[..., 1::2], gate clamped above at 7, up to [-7, 7],
   * (up + 1) * gate * sigmoid(1.702 gate)).
   */
  @Test
  void gptOssExpertLinearsSeeTheirRoutedRowsAndTheirSwiGlu() throws IOException {
    try (DecoderModel model = TestFixtureModels.open("gpt_oss")) {
      MixtureOfExperts moe = moe(model);
      int b = 1;
      BlockWeights w = model.loadBlock(b);
      MoeBlock block = block(model, b);
      String prefix = "model.layers." + b + ".";
      int hidden = w.tensor(prefix + moe.router() + ".weight").length / moe.experts();
      int intermediate = moe.expertIntermediate();
      float[] x = input(hidden, 11);
      Map<String, float[]> seen = new HashMap<>();
      Map<String, Integer> rowsSeen = new HashMap<>();
      block.run(w, x, TOKENS, 1, (linears, input, tokens, sequences) -> {
        String key = linears.stream().map(dev.sparkprune.tensorio.arch.Linear::name).reduce((a, c) -> a + "," + c).orElseThrow();
        seen.put(key, Arrays.copyOf(input, tokens * (int) linears.get(0).inFeatures()));
        rowsSeen.put(key, tokens);
      });
      ExpertRouting routing = block.route(w, x, TOKENS);
      float[] gateUp = w.tensor(prefix + moe.fusedGateUp());
      float[] gateUpBias = w.tensor(prefix + moe.fusedGateUp() + "_bias");
      for (int e = 0; e < moe.experts(); e++) {
        int[] rows = routing.rows(e);
        String gateAndUp = "mlp.experts." + e + ".gate_proj,mlp.experts." + e + ".up_proj";
        assertThat(rowsSeen.get(gateAndUp)).as("expert %d rows", e).isEqualTo(rows.length);
        assertThat(seen.get(gateAndUp)).as("expert %d gate/up input", e).isEqualTo(ExpertRouting.gather(x, rows, hidden));
        float[] inner = seen.get("mlp.experts." + e + ".down_proj");
        assertThat(inner).hasSize(rows.length * intermediate);
        for (int r = 0; r < rows.length; r++) {
          for (int j = 0; j < intermediate; j++) {
            double gate = gateUpBias[e * 2 * intermediate + 2 * j];
            double up = gateUpBias[e * 2 * intermediate + 2 * j + 1];
            for (int i = 0; i < hidden; i++) {
              double xi = x[rows[r] * hidden + i];
              gate += xi * gateUp[(e * hidden + i) * 2 * intermediate + 2 * j];
              up += xi * gateUp[(e * hidden + i) * 2 * intermediate + 2 * j + 1];
            }
            gate = Math.min(gate, 7);
            up = Math.max(-7, Math.min(up, 7));
            double expected = (up + 1) * gate / (1 + Math.exp(-1.702 * gate));
            assertThat((double) inner[r * intermediate + j]).as("expert %d row %d unit %d", e, r, j)
                .isCloseTo(expected, org.assertj.core.data.Offset.offset(1e-4 * Math.max(1, Math.abs(expected))));
          }
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"deepseek_v3", "gpt_oss"})
  void zeroingAnExpertChangesExactlyTheTokensRoutedToIt(String arch) throws IOException {
    try (DecoderModel model = TestFixtureModels.open(arch)) {
      MixtureOfExperts moe = moe(model);
      int b = moe.firstSparseBlock();
      String prefix = "model.layers." + b + ".";
      BlockWeights w = model.loadBlock(b);
      MoeBlock block = block(model, b);
      int hidden = w.tensor(prefix + moe.router() + ".weight").length / moe.experts();
      float[] x = input(hidden, 11);
      float[] before = block.run(w, x, TOKENS, 1, InputHook.NONE);
      int expert = 3;
      int[] rows = block.route(w, x, TOKENS).rows(expert);
      assertThat(rows).isNotEmpty();
      BlockWeights zeroed = w;
      if (moe.fused()) {
        for (String name : new String[] {moe.fusedDown(), moe.fusedDown() + "_bias"}) {
          float[] values = w.tensor(prefix + name).clone();
          int size = values.length / moe.experts();
          Arrays.fill(values, expert * size, (expert + 1) * size, 0f);
          zeroed = zeroed.withTensor(prefix + name, values);
        }
      } else {
        String down = prefix + moe.expertLinear(expert, 2) + ".weight";
        zeroed = zeroed.withTensor(down, new float[w.tensor(down).length]);
      }
      float[] after = block.run(zeroed, x, TOKENS, 1, InputHook.NONE);
      for (int t = 0; t < TOKENS; t++) {
        float[] a = Arrays.copyOfRange(before, t * hidden, (t + 1) * hidden);
        float[] z = Arrays.copyOfRange(after, t * hidden, (t + 1) * hidden);
        if (Arrays.binarySearch(rows, t) >= 0) {
          assertThat(z).as("%s token %d routed to expert %d", arch, t, expert).isNotEqualTo(a);
        } else {
          assertThat(z).as("%s token %d not routed to expert %d", arch, t, expert).isEqualTo(a);
        }
      }
    }
  }

  @Test
  void theCombinerTakesExpertsInAscendingOrderOnly() throws IOException {
    try (DecoderModel model = TestFixtureModels.open("glm4_moe")) {
      MixtureOfExperts moe = moe(model);
      BlockWeights w = model.loadBlock(1);
      ExpertRouting routing = block(model, 1).route(w, input(128, 3), TOKENS);
      ExpertCombiner combiner = new ExpertCombiner(routing, 128);
      combiner.add(5, new float[routing.rows(5).length * 128]);
      assertThatThrownBy(() -> combiner.add(2, new float[routing.rows(2).length * 128]))
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("Cannot add expert 2 after expert 5: experts are combined in ascending order");
      assertThat(moe.experts()).isEqualTo(16);
    }
  }

  /** A block's weights holding only expert e's three linears: what a task of one expert group loads. */
  private static BlockWeights onlyExpert(BlockWeights w, int b, int e, MixtureOfExperts moe) {
    Map<String, float[]> tensors = new HashMap<>();
    for (int p = 0; p < 3; p++) {
      String name = "model.layers." + b + "." + moe.expertLinear(e, p) + ".weight";
      tensors.put(name, w.tensor(name));
    }
    return new BlockWeights(b, tensors);
  }

  /** gpt-oss expert e from its own rows of the fused tensors, read alone from the archive. */
  private static RoutedExpert fusedExpertReadAlone(DecoderModel model, int b, int e, int hidden, MixtureOfExperts moe) throws IOException {
    ModelArchive archive = ((BaseDecoderModel) model).weights.archive();
    String prefix = "model.layers." + b + ".";
    float[][] slices = new float[4][];
    String[] names = {moe.fusedGateUp(), moe.fusedGateUp() + "_bias", moe.fusedDown(), moe.fusedDown() + "_bias"};
    for (int i = 0; i < names.length; i++) {
      ArchiveTensor tensor = archive.tensor(prefix + names[i]);
      try (SafetensorsReader reader = archive.openShard(tensor.shard())) {
        TensorInfo info = reader.tensor(prefix + names[i]);
        slices[i] = reader.readRows(info, e, 1);
      }
    }
    return MoeBlock.fusedExpert(e, slices[0], slices[1], slices[2], slices[3], hidden, moe.expertIntermediate());
  }
}
