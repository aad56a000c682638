package dev.sparkprune.scoring.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.shrink.TensorReplacements;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link SequentialRepair} on stories260K against the same steps computed here directly: the
 * dense stream run block by block, the shrunk block's linear input and its error captured from
 * the forward pass, the damped normal equations formed in double from those tokens and solved
 * by Gaussian elimination, for the first two blocks (the second on the first's repaired
 * weights); the ReplaceMe map against T^T W formed here; the repaired archive read back.
 */
class TestSequentialRepair {
  private static final LocalFileIO IO = new LocalFileIO();
  private static final LinearAlgebra LINALG = NetlibLinearAlgebra.defaultInstance();

  @TempDir Path temp;

  private static List<int[][]> chunks(ModelArchive archive, int first) throws IOException {
    int[] tokens = TokenizerLoader.load(archive)
        .encode(Files.readString(SharedData.path("data/tinystories/tinystories_val_sample.txt")).substring(first, first + 20_000), true);
    List<int[][]> chunks = new ArrayList<>();
    for (int c = 0; c < 2; c++) {
      int[][] chunk = new int[3][];
      for (int s = 0; s < 3; s++) {
        int start = (c * 3 + s) * 64;
        chunk[s] = Arrays.copyOfRange(tokens, start, start + 64);
      }
      chunks.add(chunk);
    }
    return chunks;
  }

  private ModelArchive write(ModelArchive source, ShrinkPlan plan, Map<String, float[]> replacements, String name) throws IOException {
    Path out = Files.createDirectories(temp.resolve(name));
    new ShrunkArchive(source, plan, TensorReplacements.of(replacements)).writeTo(IO, out.toString());
    return ModelArchive.open(IO, out.toString());
  }

  @Test
  void widthRefitsSolveTheNormalEquationsOfTheirBlocksInputs() throws IOException {
    ModelArchive source = ModelArchive.open(IO, SharedData.stories260K().toString());
    ModelShape shape = ModelShape.of(source.config());
    List<int[][]> chunks = chunks(source, 0);
    int[] channels = new int[128];
    for (int j = 0; j < channels.length; j++) {
      channels[j] = j + (j / 3);
    }
    Map<Integer, int[]> mlp = Map.of(0, channels, 1, channels, 2, channels, 3, channels, 4, channels);
    Map<Integer, int[]> groups = Map.of(0, new int[] {0, 2}, 1, new int[] {1, 3}, 2, new int[] {0, 1}, 3, new int[] {2, 3}, 4, new int[] {0, 3});
    ShrinkPlan plan = ShrinkPlan.of(shape, List.of(0, 1, 2, 3, 4), mlp, groups, Map.of());
    ModelArchive raw = write(source, plan, Map.of(), "raw");
    SequentialRepair.Result result;
    try (DecoderModel dense = Models.open(source, LINALG); DecoderModel shrunk = Models.open(raw, LINALG)) {
      result = SequentialRepair.run(dense, shrunk, plan, RepairSettings.DEFAULTS, chunks, List.<int[][]>of(chunks.get(1)), LINALG);

      // Every block refits o_proj (heads cut), then down_proj (channels cut): 10 refits, each lowering its residual.
      assertThat(result.refits()).hasSize(10);
      for (SequentialRepair.BlockRefit refit : result.refits()) {
        assertThat(refit.errorAfter()).as(refit.tensor()).isLessThan(refit.errorBefore());
        assertThat(refit.tokens()).isEqualTo(6 * 64);
      }

      List<HiddenStates> denseStream = new ArrayList<>();
      List<HiddenStates> stream = new ArrayList<>();
      for (int[][] chunk : chunks) {
        denseStream.add(dense.embed(chunk));
        stream.add(shrunk.embed(chunk));
      }
      for (int b = 0; b < 2; b++) {
        BlockWeights denseBlock = dense.loadBlock(b);
        for (int c = 0; c < chunks.size(); c++) {
          denseStream.set(c, dense.runBlock(denseBlock, denseStream.get(c), InputHook.NONE));
        }
        BlockWeights w = shrunk.loadBlock(b);
        String o = "model.layers." + b + ".self_attn.o_proj.weight";
        String down = "model.layers." + b + ".mlp.down_proj.weight";
        float[] expectedO = directRefit(shrunk, w, stream, denseStream, "self_attn.o_proj", w.tensor(o), true);
        assertClose(result.tensors().get(o), expectedO, o);
        w = w.withTensor(o, result.tensors().get(o));
        float[] expectedDown = directRefit(shrunk, w, stream, denseStream, "mlp.down_proj", w.tensor(down), true);
        assertClose(result.tensors().get(down), expectedDown, down);
        w = w.withTensor(down, result.tensors().get(down));
        for (int c = 0; c < chunks.size(); c++) {
          stream.set(c, shrunk.runBlock(w, stream.get(c), InputHook.NONE));
        }
      }
    }

    // The archive written with the replacements runs as the repaired blocks do; its held-out NLL is the one reported.
    ModelArchive repaired = write(source, plan, result.tensors(), "repaired");
    try (DecoderModel model = Models.open(repaired, LINALG)) {
      int[][] heldOut = chunks.get(1);
      double sum = 0;
      for (double nll : model.meanNll(model.forward(heldOut), heldOut)) {
        sum += nll;
      }
      assertThat(sum / heldOut.length).isCloseTo(result.heldOutNll(), org.assertj.core.data.Offset.offset(1e-5));
      assertThat(result.heldOutNll()).isLessThan(result.heldOutNllUnrepaired());
    }
  }

  @Test
  void depthMapIsFittedOnTheMlpOutputAndFoldedIntoThePrecedingDownProj() throws IOException {
    ModelArchive source = ModelArchive.open(IO, SharedData.stories260K().toString());
    ModelShape shape = ModelShape.of(source.config());
    List<int[][]> chunks = chunks(source, 5_000);
    ShrinkPlan plan = ShrinkPlan.of(shape, List.of(0, 1, 3, 4), Map.of(), Map.of(), Map.of());
    ModelArchive raw = write(source, plan, Map.of(), "raw");
    RepairSettings map = new RepairSettings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.PRECEDING_MAP, RepairSettings.Scope.CHANGED, 0.01);
    RepairSettings next = new RepairSettings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.NEXT, RepairSettings.Scope.CHANGED, 0.01);
    try (DecoderModel dense = Models.open(source, LINALG); DecoderModel shrunk = Models.open(raw, LINALG)) {
      SequentialRepair.Result result = SequentialRepair.run(dense, shrunk, plan, map, chunks, List.of(), LINALG);
      assertThat(result.tensors()).containsOnlyKeys("model.layers.1.mlp.down_proj.weight");
      assertThat(result.refits().get(0).fit()).isEqualTo("map");
      // NEXT leaves block 1 alone and refits the block after the run (source 3, new index 2).
      assertThat(SequentialRepair.run(dense, shrunk, plan, next, chunks, List.of(), LINALG).tensors())
          .containsOnlyKeys("model.layers.2.mlp.down_proj.weight");

      // Target: the dense stream at block 3's input; inputs: the unchanged blocks 0 and 1 of the shrunk model.
      List<HiddenStates> target = new ArrayList<>();
      List<HiddenStates> stream = new ArrayList<>();
      for (int[][] chunk : chunks) {
        HiddenStates h = dense.embed(chunk);
        for (int b = 0; b < 3; b++) {
          h = dense.runBlock(dense.loadBlock(b), h, InputHook.NONE);
        }
        target.add(h);
        stream.add(shrunk.runBlock(shrunk.loadBlock(0), shrunk.embed(chunk), InputHook.NONE));
      }
      BlockWeights w = shrunk.loadBlock(1);
      String name = "model.layers.1.mlp.down_proj.weight";
      float[] down = w.tensor(name);
      int hidden = shape.hidden();
      int width = shape.intermediate();
      // M = X W^T and E = target - output per token, in double; T = I + (M^T M + lambda I)^-1 M^T E.
      double[][] mtm = new double[hidden][hidden];
      double[][] mte = new double[hidden][hidden];
      for (int c = 0; c < chunks.size(); c++) {
        float[][] captured = new float[1][];
        HiddenStates out = shrunk.runBlock(w, stream.get(c), capture("mlp.down_proj", captured));
        for (int t = 0; t < out.tokens(); t++) {
          double[] m = new double[hidden];
          for (int r = 0; r < hidden; r++) {
            for (int j = 0; j < width; j++) {
              m[r] += captured[0][t * width + j] * (double) down[r * width + j];
            }
          }
          for (int a = 0; a < hidden; a++) {
            for (int b = 0; b < hidden; b++) {
              mtm[a][b] += m[a] * m[b];
              mte[a][b] += m[a] * ((double) target.get(c).values()[t * hidden + b] - out.values()[t * hidden + b]);
            }
          }
        }
      }
      double trace = 0;
      for (int a = 0; a < hidden; a++) {
        trace += mtm[a][a];
      }
      for (int a = 0; a < hidden; a++) {
        mtm[a][a] += 0.01 * trace / hidden;
      }
      double[][] t = TestLinearRefit.gaussianSolve(mtm, mte);
      float[] expected = new float[down.length];
      for (int a = 0; a < hidden; a++) {
        for (int j = 0; j < width; j++) {
          double value = down[a * width + j];
          for (int b = 0; b < hidden; b++) {
            value += t[b][a] * down[b * width + j];
          }
          expected[a * width + j] = (float) value;
        }
      }
      assertClose(result.tensors().get(name), expected, name);
    }
  }

  @Test
  void localTargetIsTheDenseMlpOnTheSameInput() throws IOException {
    ModelArchive source = ModelArchive.open(IO, SharedData.stories260K().toString());
    ModelShape shape = ModelShape.of(source.config());
    List<int[][]> chunks = chunks(source, 10_000);
    int[] channels = new int[128];
    for (int j = 0; j < channels.length; j++) {
      channels[j] = 2 * j - Math.min(j, 84);
    }
    ShrinkPlan plan = ShrinkPlan.of(shape, List.of(0, 1, 2, 3, 4), Map.of(0, channels, 1, channels, 2, channels, 3, channels, 4, channels),
        Map.of(), Map.of());
    ModelArchive raw = write(source, plan, Map.of(), "raw");
    RepairSettings local = new RepairSettings(RepairSettings.Target.LOCAL, RepairSettings.DepthFit.BOTH, RepairSettings.Scope.CHANGED, 0.01);
    try (DecoderModel dense = Models.open(source, LINALG); DecoderModel shrunk = Models.open(raw, LINALG)) {
      SequentialRepair.Result result = SequentialRepair.run(dense, shrunk, plan, local, chunks, List.of(), LINALG);
      // Block 0 sees the embeddings in both models: the dense down_proj input A holds the kept input X = A[:, kept],
      // and E = A W^T - X W_kept^T = the removed channels' output.
      int hidden = shape.hidden();
      int width = shape.intermediate();
      float[] denseDown = dense.loadBlock(0).tensor("model.layers.0.mlp.down_proj.weight");
      boolean[] keep = new boolean[width];
      for (int j : channels) {
        keep[j] = true;
      }
      double[][] g = new double[channels.length][channels.length];
      double[][] c = new double[channels.length][hidden];
      for (int[][] chunk : chunks) {
        float[][] captured = new float[1][];
        dense.runBlock(dense.loadBlock(0), dense.embed(chunk), capture("mlp.down_proj", captured));
        for (int t = 0; t < chunk.length * chunk[0].length; t++) {
          double[] removed = new double[hidden];
          for (int r = 0; r < hidden; r++) {
            for (int j = 0; j < width; j++) {
              if (!keep[j]) {
                removed[r] += captured[0][t * width + j] * (double) denseDown[r * width + j];
              }
            }
          }
          for (int a = 0; a < channels.length; a++) {
            double xa = captured[0][t * width + channels[a]];
            for (int b = 0; b < channels.length; b++) {
              g[a][b] += xa * captured[0][t * width + channels[b]];
            }
            for (int r = 0; r < hidden; r++) {
              c[a][r] += xa * removed[r];
            }
          }
        }
      }
      double trace = 0;
      for (int a = 0; a < channels.length; a++) {
        trace += g[a][a];
      }
      for (int a = 0; a < channels.length; a++) {
        g[a][a] += 0.01 * trace / channels.length;
      }
      double[][] delta = TestLinearRefit.gaussianSolve(g, c);
      float[] expected = new float[hidden * channels.length];
      for (int r = 0; r < hidden; r++) {
        for (int a = 0; a < channels.length; a++) {
          expected[r * channels.length + a] = (float) (denseDown[r * width + channels[a]] + delta[a][r]);
        }
      }
      assertClose(result.tensors().get("model.layers.0.mlp.down_proj.weight"), expected, "block 0 down_proj (local target)");
    }
  }

  /**
   * W + Delta^T with Delta = (X^T D X + 0.01 mean(diag) I)^-1 X^T D E, from the captured input X and E = target - output;
   * D weighs token t by 1 / mean(target_t^2) when normalized (the default target), else 1.
   */
  private static float[] directRefit(
      DecoderModel model, BlockWeights w, List<HiddenStates> stream, List<HiddenStates> target, String linear, float[] current,
      boolean normalized) {
    int out = target.get(0).width();
    int in = current.length / out;
    double[][] g = new double[in][in];
    double[][] c = new double[in][out];
    for (int k = 0; k < stream.size(); k++) {
      float[][] captured = new float[1][];
      HiddenStates output = model.runBlock(w, stream.get(k), capture(linear, captured));
      for (int t = 0; t < output.tokens(); t++) {
        double meanSquare = 0;
        for (int r = 0; r < out; r++) {
          double v = target.get(k).values()[t * out + r];
          meanSquare += v * v / out;
        }
        double weight = normalized ? 1 / meanSquare : 1;
        for (int i = 0; i < in; i++) {
          double xi = captured[0][t * in + i] * weight;
          for (int j = 0; j < in; j++) {
            g[i][j] += xi * captured[0][t * in + j];
          }
          for (int r = 0; r < out; r++) {
            c[i][r] += xi * ((double) target.get(k).values()[t * out + r] - output.values()[t * out + r]);
          }
        }
      }
    }
    double trace = 0;
    for (int i = 0; i < in; i++) {
      trace += g[i][i];
    }
    for (int i = 0; i < in; i++) {
      g[i][i] += 0.01 * trace / in;
    }
    double[][] delta = TestLinearRefit.gaussianSolve(g, c);
    float[] expected = new float[current.length];
    for (int r = 0; r < out; r++) {
      for (int j = 0; j < in; j++) {
        expected[r * in + j] = (float) (current[r * in + j] + delta[j][r]);
      }
    }
    return expected;
  }

  private static InputHook capture(String linear, float[][] into) {
    return (linears, input, tokens, sequences) -> {
      if (linears.size() == 1 && linears.get(0).name().equals(linear)) {
        into[0] = Arrays.copyOf(input, tokens * (int) linears.get(0).inFeatures());
      }
    };
  }

  private static void assertClose(float[] actual, float[] expected, String name) {
    assertThat(actual).as(name).hasSameSizeAs(expected);
    double worst = 0;
    double scale = 0;
    for (int i = 0; i < expected.length; i++) {
      worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
      scale = Math.max(scale, Math.abs(expected[i]));
    }
    assertThat(worst).as("%s: largest difference (weights up to %.3f)", name, scale).isLessThan(2e-4 * Math.max(1, scale));
  }
}
