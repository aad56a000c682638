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
import java.util.List;
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
}
