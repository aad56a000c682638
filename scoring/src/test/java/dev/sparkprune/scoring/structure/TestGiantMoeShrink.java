package dev.sparkprune.scoring.structure;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.model.MoeBlock;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.KeptBlock;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Removing experts from DeepSeek-V3, GLM-4.5 and gpt-oss: the shrunk archive's logits equal the
 * source model's with the removed experts masked out of routing before any choice is made. Each
 * router family is masked where that is exactly the shrunk router:
 *
 * <ul>
 *   <li>sigmoid group-limited (DeepSeek, GLM): e_score_correction_bias = -infinity for removed
 *       experts, so their choice score is -infinity in the groups' two-best sums and in the
 *       top-k; their weights (the plain sigmoid) are never taken. The plan keeps the same number
 *       in every group, so source group g's kept experts are the shrunk group g. (Outside the
 *       chosen groups transformers sets choices to 0, which a removed expert could then win only
 *       if fewer than k chosen-group experts scored above 0; not on these fixtures.)
 *   <li>top-k softmax (gpt-oss): router bias = -infinity for removed experts: they never reach
 *       the top k, and the softmax is over the k chosen logits only.
 * </ul>
 *
 * Blocks are dropped too (first_k_dense_replace and layer_types renumbered); the MTP layer goes.
 */
class TestGiantMoeShrink {
  private static final LocalFileIO IO = new LocalFileIO();

  @TempDir Path temp;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"deepseek_v3", "glm4_moe", "gpt_oss"})
  void keptExpertsComputeAsTheSourceWithTheRemovedOnesMaskedBeforeRouting(String arch) throws IOException {
    ModelArchive source = ModelArchive.open(IO, ModelFixtures.path(arch).toString());
    ModelShape shape = ModelShape.of(source.config());
    MixtureOfExperts moe = shape.moe().orElseThrow();
    // DeepSeek drops a sparse block, GLM its dense first block, gpt-oss a sliding and a full block.
    List<Integer> dropped = arch.equals("deepseek_v3") ? List.of(2) : arch.equals("glm4_moe") ? List.of(0) : List.of(1, 2);
    List<Integer> blocks = new java.util.ArrayList<>();
    Map<Integer, int[]> experts = new HashMap<>();
    for (int b = 0; b < shape.blocks(); b++) {
      if (dropped.contains(b)) {
        continue;
      }
      blocks.add(b);
      if (shape.isSparse(b)) {
        experts.put(b, ModelFixtures.halfPerGroup(moe.experts(), moe.experts() / moe.groups(), b));
      }
    }
    ShrinkPlan plan = ShrinkPlan.of(shape, blocks, Map.of(), Map.of(), experts);
    Path out = temp.resolve(arch);
    Files.createDirectories(out);
    new ShrunkArchive(source, plan).writeTo(IO, out.toString());

    int[] tokens = ModelFixtures.goldenTokens(arch);
    float[] expected = maskedSourceLogits(source, plan, tokens, true);
    float[] unmasked = maskedSourceLogits(source, plan, tokens, false);
    try (DecoderModel shrunk = Models.open(ModelArchive.open(IO, out.toString()), NetlibLinearAlgebra.defaultInstance())) {
      float[] logits = shrunk.logits(shrunk.forward(new int[][] {tokens}), 0);
      double worst = 0;
      for (int i = 0; i < logits.length; i++) {
        worst = Math.max(worst, Math.abs(logits[i] - expected[i]));
      }
      System.out.printf("%s: largest |shrunk - masked source| = %.3g%n", arch, worst);
      assertThat(worst).as("%s: largest |shrunk logit - masked source logit|", arch).isLessThanOrEqualTo(1e-4);
      // The removed experts mattered: without the mask the source computes something else.
      double routedElsewhere = 0;
      for (int i = 0; i < logits.length; i++) {
        routedElsewhere = Math.max(routedElsewhere, Math.abs(logits[i] - unmasked[i]));
      }
      assertThat(routedElsewhere).as("%s: largest |shrunk logit - unmasked source logit|", arch).isGreaterThan(1e-2);
    }
  }

  /** The source forward over the kept blocks, removed experts masked out through the router's bias (or not). */
  private static float[] maskedSourceLogits(ModelArchive source, ShrinkPlan plan, int[] tokens, boolean mask) throws IOException {
    MixtureOfExperts moe = plan.source().moe().orElseThrow();
    String bias = moe.correctionBias().or(moe::routerBias).orElseThrow();
    try (DecoderModel model = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
      HiddenStates h = model.embed(new int[][] {tokens});
      for (KeptBlock kept : plan.blocks()) {
        BlockWeights w = model.loadBlock(kept.source());
        if (mask && plan.source().isSparse(kept.source())) {
          String name = "model.layers." + kept.source() + "." + bias;
          float[] masked = w.tensor(name).clone();
          for (int e = 0; e < masked.length; e++) {
            if (Arrays.binarySearch(kept.experts(), e) < 0) {
              masked[e] = Float.NEGATIVE_INFINITY;
            }
          }
          w = w.withTensor(name, masked);
        }
        h = model.runBlock(w, h, InputHook.NONE);
      }
      return model.logits(h, 0);
    }
  }

  /**
   * REAP and routed-token counts of each expert, as the shrink statistics collect them through
   * the MoE block, against a float64 computation from the router and expert weights: routing by
   * each family's definition (ModelFixtures.routingWeights), SwiGLU experts (DeepSeek, GLM) and
   * gpt-oss's clamped SwiGLU with biases and interleaved gate/up columns.
   */
  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"deepseek_v3", "glm4_moe", "gpt_oss"})
  void reapAndRoutedTokensEqualAFloat64Computation(String arch) throws IOException {
    ModelArchive source = ModelArchive.open(IO, ModelFixtures.path(arch).toString());
    MixtureOfExperts moe = MixtureOfExperts.of(source.config()).orElseThrow();
    try (DecoderModel model = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
      int b = moe.firstSparseBlock();
      String p = "model.layers." + b + ".";
      BlockWeights w = model.loadBlock(b);
      int hidden = model.embed(new int[][] {{1}}).width();
      int tokens = 40;
      java.util.SplittableRandom random = new java.util.SplittableRandom(3);
      float[] x = new float[tokens * hidden];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) (2 * random.nextDouble() - 1);
      }
      WidthStatistics statistics = new WidthStatistics(moe.experts());
      MoeBlock.of(NetlibLinearAlgebra.defaultInstance(), moe, model.layout().blocks().get(b), p, hidden).run(w, x, tokens, 1, statistics);
      double[][] routing = ModelFixtures.routingWeights(
          x, w.tensor(p + moe.router() + ".weight"), moe.routerBias().map(name -> w.tensor(p + name)).orElse(new float[0]),
          moe.correctionBias().map(name -> w.tensor(p + name)).orElse(new float[0]), tokens, moe);
      for (int e = 0; e < moe.experts(); e++) {
        double sum = 0;
        int count = 0;
        for (int t = 0; t < tokens; t++) {
          if (routing[t][e] != 0) {
            count++;
            double[] y = expertOutput(w, p, moe, e, x, t, hidden);
            double squares = 0;
            for (double v : y) {
              squares += v * v;
            }
            sum += routing[t][e] * Math.sqrt(squares);
          }
        }
        ExpertSaliency saliency = statistics.experts();
        double expected = count == 0 ? 0 : sum / count;
        assertThat(saliency.routedTokens(e)).as("%s expert %d tokens", arch, e).isEqualTo(count);
        assertThat(saliency.reap(e)).as("%s expert %d REAP", arch, e).isCloseTo(expected, org.assertj.core.data.Offset.offset(1e-5 * Math.max(1, expected)));
      }
    }
  }

  /** Expert e's output on token t in double, from its weights as stored. */
  private static double[] expertOutput(BlockWeights w, String p, MixtureOfExperts moe, int e, float[] x, int t, int hidden) {
    int inner = moe.expertIntermediate();
    double[] act = new double[inner];
    double[] y = new double[hidden];
    if (moe.fused()) {
      float[] gateUp = w.tensor(p + moe.fusedGateUp());
      float[] gateUpBias = w.tensor(p + moe.fusedGateUp() + "_bias");
      float[] down = w.tensor(p + moe.fusedDown());
      float[] downBias = w.tensor(p + moe.fusedDown() + "_bias");
      int width = 2 * inner;
      for (int j = 0; j < inner; j++) {
        double gate = gateUpBias[e * width + 2 * j];
        double up = gateUpBias[e * width + 2 * j + 1];
        for (int c = 0; c < hidden; c++) {
          gate += (double) x[t * hidden + c] * gateUp[(e * hidden + c) * width + 2 * j];
          up += (double) x[t * hidden + c] * gateUp[(e * hidden + c) * width + 2 * j + 1];
        }
        gate = Math.min(gate, 7.0);
        up = Math.max(-7.0, Math.min(up, 7.0));
        act[j] = (up + 1) * gate / (1 + Math.exp(-1.702 * gate));
      }
      for (int c = 0; c < hidden; c++) {
        y[c] = downBias[e * hidden + c];
        for (int j = 0; j < inner; j++) {
          y[c] += act[j] * down[(e * inner + j) * hidden + c];
        }
      }
      return y;
    }
    float[] gate = w.tensor(p + moe.expertLinear(e, 0) + ".weight");
    float[] up = w.tensor(p + moe.expertLinear(e, 1) + ".weight");
    float[] down = w.tensor(p + moe.expertLinear(e, 2) + ".weight");
    for (int j = 0; j < inner; j++) {
      double g = 0;
      double u = 0;
      for (int c = 0; c < hidden; c++) {
        g += (double) gate[j * hidden + c] * x[t * hidden + c];
        u += (double) up[j * hidden + c] * x[t * hidden + c];
      }
      act[j] = g / (1 + Math.exp(-g)) * u;
    }
    for (int c = 0; c < hidden; c++) {
      for (int j = 0; j < inner; j++) {
        y[c] += down[c * inner + j] * act[j];
      }
    }
    return y;
  }

  /**
   * The shrink decisions from calibration statistics: REAP keeps half the experts of every
   * group under group-limited routing; DeepSeek's latent attention is never scored for heads;
   * the plan writes an archive that opens.
   */
  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"deepseek_v3", "glm4_moe", "gpt_oss"})
  void calibrationDecidesAPlanEveryRuntimeCanLoad(String arch) throws IOException {
    ModelArchive source = ModelArchive.open(IO, ModelFixtures.path(arch).toString());
    ModelShape shape = ModelShape.of(source.config());
    int[] golden = ModelFixtures.goldenTokens(arch);
    int[][] windows = {Arrays.copyOf(golden, 32), Arrays.copyOfRange(golden, 32, 64)};
    int drop = arch.equals("gpt_oss") ? 2 : 1;
    ShrinkSettings settings = new ShrinkSettings(
        drop, ShrinkSettings.LayerMetric.ANGULAR, 1, 1, ShrinkSettings.WidthMetric.ACTIVATION, 0.5, ExpertSaliency.Metric.REAP);
    ShrinkDecision decision;
    try (DecoderModel model = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
      decision = ShrinkDecision.choose(shape, settings, ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, Map.of(0, windows), drop)));
    }
    MixtureOfExperts moe = shape.moe().orElseThrow();
    for (KeptBlock kept : decision.plan().blocks()) {
      if (shape.isSparse(kept.source())) {
        assertThat(kept.experts()).hasSize(moe.experts() / 2);
        int perGroup = moe.experts() / moe.groups();
        for (int g = 0; g < moe.groups(); g++) {
          int group = g;
          assertThat(Arrays.stream(kept.experts()).filter(e -> e / perGroup == group).count()).isEqualTo(perGroup / 2);
        }
      }
    }
    Path out = temp.resolve(arch + "-decided");
    Files.createDirectories(out);
    new ShrunkArchive(source, decision.plan()).writeTo(IO, out.toString());
    try (DecoderModel shrunk = Models.open(ModelArchive.open(IO, out.toString()), NetlibLinearAlgebra.defaultInstance())) {
      assertThat(shrunk.layout().blocks()).hasSize(shape.blocks() - drop);
      float[] logits = shrunk.logits(shrunk.forward(new int[][] {Arrays.copyOf(golden, 16)}), 0);
      for (float logit : logits) {
        assertThat(Float.isFinite(logit)).isTrue();
      }
    }
  }
}
