package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.IntStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A sparse block split as expert-parallel calibration splits it: the block task runs attention
 * and routes from weights without the routed experts, each expert computes its rows from its
 * own tensors read alone (in groups, groups in reverse order), and the outputs combined in
 * ascending expert order, the shared expert added and the residual added give the same bits as
 * {@link DecoderModel#runBlock}, and every linear sees the same inputs. On every MoE fixture,
 * every sparse block, with the fixture's golden tokens carried through the blocks before it.
 */
class TestSparseBlockSplit {
  private static final LinearAlgebra LINALG = NetlibLinearAlgebra.defaultInstance();

  /** Records each linear input group's inputs as bits, in call order per group. */
  private static final class Recorder implements InputHook {
    final Map<String, List<String>> inputs = new TreeMap<>();
    final Map<Integer, List<String>> outputs = new TreeMap<>();

    @Override
    public void accept(List<Linear> linears, float[] input, int tokens, int sequences) {
      String key = linears.get(0).inputGroup() + (linears.get(0).expert().isPresent() ? "" : "@" + linears.get(0).name());
      inputs.computeIfAbsent(key, k -> new ArrayList<>()).add(digest(input, tokens * (int) linears.get(0).inFeatures()) + "/" + sequences);
    }

    @Override
    public void acceptExpertOutput(int expert, int[] rows, float[] routingWeights, float[] output, int width) {
      outputs.computeIfAbsent(expert, k -> new ArrayList<>())
          .add(java.util.Arrays.toString(rows) + digest(routingWeights, rows.length) + digest(output, rows.length * width));
    }
  }

  private static String digest(float[] values, int count) {
    long hash = 17;
    for (int i = 0; i < count; i++) {
      hash = hash * 31 + Float.floatToRawIntBits(values[i]);
    }
    return count + ":" + Long.toHexString(hash);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "glm4_moe", "gpt_oss"})
  void theSplitBlockGivesRunBlocksBitsAndInputs(String arch) throws IOException {
    int[] golden = ModelFixtures.goldenTokens(arch);
    int[] reversed = IntStream.range(0, golden.length).map(t -> golden[golden.length - 1 - t]).toArray();
    try (DecoderModel model = TestFixtureModels.open(arch)) {
      HiddenStates hidden = model.embed(new int[][] {golden, reversed});
      int sparseBlocks = 0;
      for (int b = 0; b < model.layout().blocks().size(); b++) {
        BlockWeights whole = model.loadBlock(b);
        Recorder expected = new Recorder();
        HiddenStates output = model.runBlock(whole, hidden, expected);
        if (model.moe(b).isPresent()) {
          sparseBlocks++;
          Recorder actual = new Recorder();
          assertThat(split(model, b, hidden, actual).values()).as("%s block %d", arch, b).isEqualTo(output.values());
          assertThat(actual.inputs).as("%s block %d linear inputs", arch, b).isEqualTo(expected.inputs);
          assertThat(actual.outputs).as("%s block %d expert outputs", arch, b).isEqualTo(expected.outputs);

          // The streaming model reads experts one at a time and gives the same bits.
          DecoderModel streaming = ExpertStreaming.wrap(model, Set.of(b));
          assertThat(streaming.runBlock(streaming.loadBlock(b), hidden, InputHook.NONE).values()).isEqualTo(output.values());
        } else {
          assertThat(model.loadBlockWithoutExperts(b).bytes()).isEqualTo(whole.bytes());
        }
        hidden = output;
      }
      assertThat(sparseBlocks).isPositive();
    }
  }

  /** The block in the sharded order: attention task, expert groups of 3 in reverse order, combine. */
  private static HiddenStates split(DecoderModel model, int b, HiddenStates input, InputHook hook) throws IOException {
    MoeBlock moe = model.moe(b).orElseThrow();
    MixtureOfExperts settings = moe.settings();
    BlockWeights attention = model.loadBlockWithoutExperts(b);
    Set<String> routed = new TreeSet<>();
    model.layout().blocks().get(b).linears().stream().filter(Linear::isRoutedExpert).forEach(linear -> routed.add(linear.tensorName()));
    routed.forEach(name -> assertThat(attention.contains(name)).as("block task holds %s", name).isFalse());
    if (settings.fused()) {
      assertThat(attention.contains("model.layers." + b + "." + settings.fusedGateUp())).isFalse();
    }
    MoeInput moeInput = model.attend(attention, input, hook);
    ExpertRouting shipped = moe.route(attention, moeInput.x(), moeInput.tokens());
    ExpertRouting routing = ExpertRouting.of(settings.experts(), settings.topK(), shipped.choices(), shipped.choiceWeights());
    int hidden = input.width();
    Map<Integer, float[]> outputs = new HashMap<>();
    for (int first = (settings.experts() - 1) / 3 * 3; first >= 0; first -= 3) {
      for (int e = first; e < Math.min(settings.experts(), first + 3); e++) {
        BlockWeights alone = model.loadExpert(b, e);
        assertThat(alone.bytes()).isLessThan(attention.bytes() + alone.bytes());
        int[] rows = routing.rows(e);
        RoutedExpert expert = moe.expertAlone(alone, e);
        float[] output = expert.apply(LINALG, ExpertRouting.gather(moeInput.x(), rows, hidden), rows.length, input.sequences(), hook);
        if (rows.length > 0) {
          hook.acceptExpertOutput(e, rows, routing.weights(e), output, hidden);
        }
        outputs.put(e, output);
      }
    }
    ExpertCombiner combiner = new ExpertCombiner(routing, hidden);
    new TreeMap<>(outputs).forEach(combiner::add);
    float[] out = combiner.result();
    MoeInput recomputed = model.moeInput(attention, moeInput.residual());
    assertThat(recomputed.x()).isEqualTo(moeInput.x());
    moe.addShared(attention, recomputed.x(), moeInput.tokens(), input.sequences(), hook, out);
    return recomputed.finish(out);
  }
}
