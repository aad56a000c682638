package dev.sparkprune.scoring.structure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Expert pruning on the MoE fixtures: REAP saliency equals a direct float64 computation from the
 * expert weights, and an archive keeping half the experts routes every token to the top-k of the
 * source router restricted to the kept experts, with the source's probabilities renormalised over them.
 */
class TestExpertShrink {
  private static final LocalFileIO IO = new LocalFileIO();

  @TempDir Path temp;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe"})
  void reapEqualsADirectComputation(String arch) throws IOException {
    ModelArchive source = ModelArchive.open(IO, ModelFixtures.path(arch).toString());
    MixtureOfExperts moe = MixtureOfExperts.of(source.config()).orElseThrow();
    try (DecoderModel model = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
      HiddenStates h = model.embed(new int[][] {ModelFixtures.goldenTokens(arch)});
      BlockWeights w = model.loadBlock(0);
      Recorder recorder = new Recorder(new WidthStatistics(moe.experts()));
      model.runBlock(w, h, recorder);
      String p = "model.layers.0.";
      int hidden = h.width();
      int tokens = h.tokens();
      float[] router = w.tensor(p + moe.router() + ".weight");
      int[][] rows = ModelFixtures.routedRows(recorder.x, router, tokens, moe);
      for (int e = 0; e < moe.experts(); e++) {
        float[] gate = w.tensor(p + moe.expertLinear(e, 0) + ".weight");
        float[] up = w.tensor(p + moe.expertLinear(e, 1) + ".weight");
        float[] down = w.tensor(p + moe.expertLinear(e, 2) + ".weight");
        int inner = moe.expertIntermediate();
        double sum = 0;
        for (int t : rows[e]) {
          double[] probabilities = softmax(recorder.x, t, router, moe.experts(), hidden);
          double weight = probabilities[e];
          if (moe.normalizeTopK()) {
            double total = 0;
            for (int other = 0; other < moe.experts(); other++) {
              total += contains(rows[other], t) ? probabilities[other] : 0;
            }
            weight /= total;
          }
          double[] act = new double[inner];
          for (int j = 0; j < inner; j++) {
            double g = 0;
            double u = 0;
            for (int c = 0; c < hidden; c++) {
              g += (double) gate[j * hidden + c] * recorder.x[t * hidden + c];
              u += (double) up[j * hidden + c] * recorder.x[t * hidden + c];
            }
            act[j] = g / (1 + Math.exp(-g)) * u;
          }
          double squares = 0;
          for (int r = 0; r < hidden; r++) {
            double y = 0;
            for (int j = 0; j < inner; j++) {
              y += down[r * inner + j] * act[j];
            }
            squares += y * y;
          }
          sum += weight * Math.sqrt(squares);
        }
        double expected = rows[e].length == 0 ? 0 : sum / rows[e].length;
        ExpertSaliency saliency = recorder.statistics.experts();
        assertThat(saliency.routedTokens(e)).as("%s expert %d tokens", arch, e).isEqualTo(rows[e].length);
        assertThat(saliency.reap(e)).as("%s expert %d REAP", arch, e).isCloseTo(expected, within(1e-5 * Math.max(1, expected)));
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe"})
  void halfTheExpertsRouteAsTheSourceRestrictedToThem(String arch) throws IOException {
    ModelArchive source = ModelArchive.open(IO, ModelFixtures.path(arch).toString());
    ModelShape shape = ModelShape.of(source.config());
    int keep = KeepCounts.experts(shape.experts(), 0.5);
    Map<Integer, int[]> experts = new HashMap<>();
    List<Integer> blocks = new ArrayList<>();
    for (int b = 0; b < shape.blocks(); b++) {
      blocks.add(b);
      // A different half in every block, so renumbering is exercised.
      int[] kept = new int[keep];
      for (int i = 0; i < keep; i++) {
        kept[i] = (b + 2 * i) % shape.experts();
      }
      java.util.Arrays.sort(kept);
      experts.put(b, kept);
    }
    Path out = temp.resolve(arch);
    Files.createDirectories(out);
    new ShrunkArchive(source, ShrinkPlan.of(shape, blocks, Map.of(), Map.of(), experts)).writeTo(IO, out.toString());
    ModelArchive shrunk = ModelArchive.open(IO, out.toString());
    MixtureOfExperts shrunkMoe = MixtureOfExperts.of(shrunk.config()).orElseThrow();
    assertThat(shrunkMoe.experts()).isEqualTo(keep);
    try (DecoderModel model = Models.open(shrunk, NetlibLinearAlgebra.defaultInstance());
        DecoderModel original = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
      HiddenStates h = model.embed(new int[][] {ModelFixtures.goldenTokens(arch)});
      for (int b = 0; b < shape.blocks(); b++) {
        Recorder recorder = new Recorder(InputHook.NONE);
        HiddenStates next = model.runBlock(model.loadBlock(b), h, recorder);
        float[] sourceRouter = original.loadBlock(b).tensor("model.layers." + b + "." + shrunkMoe.router() + ".weight");
        int hidden = h.width();
        float[] restricted = new float[keep * hidden];
        int[] kept = experts.get(b);
        for (int i = 0; i < keep; i++) {
          System.arraycopy(sourceRouter, kept[i] * hidden, restricted, i * hidden, hidden);
        }
        int[][] expected = ModelFixtures.routedRows(recorder.x, restricted, h.tokens(), shrunkMoe);
        for (int e = 0; e < keep; e++) {
          assertThat(recorder.rows.getOrDefault(e, new int[0])).as("%s block %d expert %d (source %d)", arch, b, e, kept[e]).isEqualTo(expected[e]);
          for (int i = 0; i < expected[e].length; i++) {
            int t = expected[e][i];
            double[] probabilities = softmax(recorder.x, t, restricted, keep, hidden);
            double weight = probabilities[e];
            if (shrunkMoe.normalizeTopK()) {
              double total = 0;
              for (int other = 0; other < keep; other++) {
                total += contains(expected[other], t) ? probabilities[other] : 0;
              }
              weight /= total;
            }
            assertThat((double) recorder.weights.get(e)[i]).isCloseTo(weight, within(1e-5));
          }
        }
        h = next;
      }
    }
  }

  private static double[] softmax(float[] x, int t, float[] router, int experts, int hidden) {
    double[] logits = new double[experts];
    double max = Double.NEGATIVE_INFINITY;
    for (int e = 0; e < experts; e++) {
      for (int c = 0; c < hidden; c++) {
        logits[e] += (double) x[t * hidden + c] * router[e * hidden + c];
      }
      max = Math.max(max, logits[e]);
    }
    double sum = 0;
    for (int e = 0; e < experts; e++) {
      logits[e] = Math.exp(logits[e] - max);
      sum += logits[e];
    }
    for (int e = 0; e < experts; e++) {
      logits[e] /= sum;
    }
    return logits;
  }

  private static boolean contains(int[] values, int value) {
    return java.util.Arrays.binarySearch(values, value) >= 0;
  }

  /** Captures the router input (every expert's input with ExpertInputs.ALL) and each expert's routed rows. */
  private static final class Recorder implements InputHook {
    private final InputHook delegate;
    private final WidthStatistics statistics;
    float[] x;
    final Map<Integer, int[]> rows = new HashMap<>();
    final Map<Integer, float[]> weights = new HashMap<>();

    Recorder(InputHook delegate) {
      this.delegate = delegate;
      this.statistics = delegate instanceof WidthStatistics stats ? stats : new WidthStatistics(0);
    }

    @Override
    public void accept(List<Linear> linears, float[] input, int tokens, int sequences) {
      if (linears.get(0).isRoutedExpert() && x == null) {
        x = input.clone();
      }
      delegate.accept(linears, input, tokens, sequences);
    }

    @Override
    public ExpertInputs expertInputs() {
      return ExpertInputs.ALL;
    }

    @Override
    public void acceptExpertOutput(int expert, int[] routed, float[] routingWeights, float[] output, int width) {
      rows.put(expert, routed.clone());
      weights.put(expert, routingWeights.clone());
      delegate.acceptExpertOutput(expert, routed, routingWeights, output, width);
    }
  }
}
