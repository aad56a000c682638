package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.assertj.core.data.Offset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real checkpoints of these architectures cannot be downloaded here, so random archives of each
 * check the invariants that catch layout bugs: causality, batching, and the hook's view.
 */
class TestArchitectureForwards {
  static final LinearAlgebra LINALG = NetlibLinearAlgebra.defaultInstance();

  @TempDir Path dir;

  static Stream<Arguments> architectures() {
    return Stream.of(
        Arguments.of("llama-gqa", SyntheticArchive.llamaConfig(32, 2, 4, 2, 48, 64)),
        Arguments.of("qwen2-bias", SyntheticArchive.llamaConfig(32, 2, 4, 4, 48, 64).put("model_type", "qwen2")),
        Arguments.of("gpt2", SyntheticArchive.gpt2Config(32, 2, 4, 64, 32)),
        Arguments.of("opt-pre-norm", SyntheticArchive.optConfig(32, 2, 4, 64, 64, 32, 32, true)),
        Arguments.of("opt-post-norm-projected", SyntheticArchive.optConfig(32, 2, 4, 64, 64, 32, 24, false)),
        Arguments.of("neox-parallel-partial-rotary", SyntheticArchive.gptNeoxConfig(32, 2, 4, 64, 64, 0.25, true)),
        Arguments.of("neox-sequential", SyntheticArchive.gptNeoxConfig(32, 2, 4, 64, 64, 1.0, false)));
  }

  static DecoderModel open(Path archive, ObjectNode config, long seed) throws IOException {
    SyntheticArchive.builder(config).dtype(DType.F32).initStd(0.3f).seed(seed).build().write(new LocalFileIO(), archive.toString());
    return Models.open(ModelArchive.open(new LocalFileIO(), archive.toString()), LINALG);
  }

  static int[][] randomTokens(int sequences, int length, int vocab, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    int[][] tokens = new int[sequences][length];
    for (int[] sequence : tokens) {
      for (int t = 0; t < length; t++) {
        sequence[t] = random.nextInt(vocab);
      }
    }
    return tokens;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("architectures")
  void laterTokensNeverChangeEarlierLogitsAndBatchingChangesNothing(String name, ObjectNode config) throws IOException {
    try (DecoderModel model = open(dir.resolve(name), config, 3)) {
      int[][] tokens = randomTokens(3, 12, model.vocabSize(), 4);
      tokens[1] = tokens[0].clone();
      tokens[1][7] = (tokens[1][7] + 1) % model.vocabSize();
      HiddenStates batch = model.forward(tokens);
      int vocab = model.vocabSize();
      float[] original = model.logits(batch, 0);
      float[] changed = model.logits(batch, 1);
      for (int i = 0; i < 7 * vocab; i++) {
        assertThat(changed[i]).as("%s logit %d before the change", name, i).isCloseTo(original[i], Offset.offset(1e-5f));
      }
      float difference = 0;
      for (int i = 7 * vocab; i < 12 * vocab; i++) {
        difference = Math.max(difference, Math.abs(changed[i] - original[i]));
      }
      assertThat(difference).as("%s: a changed token must change later logits", name).isGreaterThan(1e-4f);
      float[] alone = model.logits(model.forward(new int[][] {tokens[2]}), 0);
      float[] batched = model.logits(batch, 2);
      for (int i = 0; i < alone.length; i++) {
        assertThat(alone[i]).as("%s batched vs alone %d", name, i).isCloseTo(batched[i], Offset.offset(1e-5f));
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("architectures")
  void theHookSeesEveryLinearOnceWithItsInputWidth(String name, ObjectNode config) throws IOException {
    try (DecoderModel model = open(dir.resolve(name), config, 5)) {
      int[][] tokens = randomTokens(2, 6, model.vocabSize(), 6);
      HiddenStates hidden = model.embed(tokens);
      for (int b = 0; b < model.layout().blocks().size(); b++) {
        List<Linear> seen = new ArrayList<>();
        hidden = model.runBlock(model.loadBlock(b), hidden, (linears, input, count, sequences) -> {
          assertThat(count).isEqualTo(12);
          assertThat(sequences).isEqualTo(2);
          for (Linear linear : linears) {
            assertThat(input.length).as("%s input of %s", name, linear.name()).isEqualTo(12 * (int) linear.inFeatures());
            seen.add(linear);
          }
        });
        assertThat(seen).containsExactlyElementsOf(model.layout().blocks().get(b).linears());
      }
    }
  }

  /**
   * The job runs a whole chunk of samples through a block as one batch: each sequence's output
   * and the rows each input group hands the hook must equal that sequence run alone (within
   * tolerance: GEMMs of other shapes may sum in another order), with sequences longer than one
   * attention tile so the tiling is crossed.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("architectures")
  void aBatchEqualsItsSequencesOneByOneAndTheHookSeesTheirRowsInOrder(String name, ObjectNode config) throws IOException {
    int length = Layers.ATTENTION_TILE + 45;
    ObjectNode longer = config.deepCopy();
    for (String key : List.of("n_positions", "max_position_embeddings")) {
      if (longer.has(key)) {
        longer.put(key, 2 * length);
      }
    }
    try (DecoderModel model = open(dir.resolve(name), longer, 7)) {
      int sequences = 3;
      HiddenStates input = model.embed(randomTokens(sequences, length, model.vocabSize(), 8));
      BlockWeights weights = model.loadBlock(0);
      Map<String, float[]> batchInputs = new LinkedHashMap<>();
      HiddenStates batch = model.runBlock(weights, input, (linears, rows, count, seen) -> {
        assertThat(seen).isEqualTo(sequences);
        assertThat(count).isEqualTo(sequences * length);
        batchInputs.put(linears.get(0).name(), rows.clone());
      });
      int width = batch.width();
      for (int s = 0; s < sequences; s++) {
        Map<String, float[]> aloneInputs = new LinkedHashMap<>();
        HiddenStates alone = model.runBlock(weights, input.slice(s, 1), (linears, rows, count, seen) -> {
          assertThat(seen).isEqualTo(1);
          aloneInputs.put(linears.get(0).name(), rows.clone());
        });
        assertCloseRows(name + " output of sequence " + s, batch.values(), s * length * width, alone.values(), length * width);
        assertThat(aloneInputs.keySet()).containsExactlyElementsOf(batchInputs.keySet());
        for (Map.Entry<String, float[]> group : aloneInputs.entrySet()) {
          int groupWidth = group.getValue().length / length;
          assertCloseRows(name + " hook input " + group.getKey() + " of sequence " + s, batchInputs.get(group.getKey()), s * length * groupWidth,
              group.getValue(), length * groupWidth);
        }
      }
    }
  }

  private static void assertCloseRows(String what, float[] batch, int offset, float[] alone, int count) {
    for (int i = 0; i < count; i++) {
      assertThat(batch[offset + i]).as("%s, value %d", what, i).isCloseTo(alone[i], Offset.offset(1e-4f * Math.max(1f, Math.abs(alone[i]))));
    }
  }
}
