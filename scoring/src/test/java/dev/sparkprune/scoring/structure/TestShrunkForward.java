package dev.sparkprune.scoring.structure;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.KeptBlock;
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
 * A shrunk archive run by sparkprune's forward pass equals the source model run with the removed
 * structures switched off directly: dropped blocks skipped, the o_proj columns of removed KV
 * groups and the gate/up rows and down columns of removed MLP channels zeroed (a removed head or
 * channel then contributes exactly nothing).
 */
class TestShrunkForward {
  private static final LocalFileIO IO = new LocalFileIO();

  @TempDir Path temp;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"stories260K", "llama", "qwen3", "qwen2_moe", "mixtral", "glm4_moe", "gpt_oss"})
  void shrunkLogitsEqualTheSourceWithRemovedStructuresZeroed(String arch) throws IOException {
    Path location = arch.equals("stories260K") ? SharedData.stories260K() : ModelFixtures.path(arch);
    ModelArchive source = ModelArchive.open(IO, location.toString());
    ModelShape shape = ModelShape.of(source.config());
    int[] tokens = arch.equals("stories260K") ? storyTokens() : ModelFixtures.goldenTokens(arch);

    // Keep blocks but the second (and the third of gpt-oss, whose layers must keep alternating),
    // the top KV groups and MLP channels by weight norm.
    List<Integer> keptBlocks = new ArrayList<>();
    Map<Integer, int[]> channels = new HashMap<>();
    Map<Integer, int[]> groups = new HashMap<>();
    AttentionGroups attention = new AttentionGroups(shape.heads(), shape.kvHeads(), shape.headDim());
    try (DecoderModel model = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
      for (int b = 0; b < shape.blocks(); b++) {
        if (b == 1 || (b == 2 && arch.equals("gpt_oss"))) {
          continue;
        }
        keptBlocks.add(b);
        BlockWeights w = model.loadBlock(b);
        String p = "model.layers." + b + ".";
        double[] groupScores = WidthScores.kvGroupWeightNorms(
            w.tensor(p + "self_attn.q_proj.weight"), w.tensor(p + "self_attn.k_proj.weight"), w.tensor(p + "self_attn.v_proj.weight"),
            w.tensor(p + "self_attn.o_proj.weight"), shape.hidden(), attention);
        groups.put(b, WidthScores.topIndices(groupScores, KeepCounts.kvGroups(shape.kvHeads(), 0.5)));
        if (!shape.isSparse(b)) {
          double[] channelScores = WidthScores.mlpChannelWeightNorms(
              w.tensor(p + "mlp.gate_proj.weight"), w.tensor(p + "mlp.up_proj.weight"), w.tensor(p + "mlp.down_proj.weight"),
              shape.hidden(), shape.intermediate());
          channels.put(b, WidthScores.topIndices(channelScores, KeepCounts.mlpChannels(shape.intermediate(), 0.5)));
        }
      }
    }
    ShrinkPlan plan = ShrinkPlan.of(shape, keptBlocks, channels, groups, Map.of());
    Path out = temp.resolve(arch);
    Files.createDirectories(out);
    new ShrunkArchive(source, plan).writeTo(IO, out.toString());

    float[] expected = zeroedSourceLogits(source, plan, tokens);
    try (DecoderModel shrunk = Models.open(ModelArchive.open(IO, out.toString()), NetlibLinearAlgebra.defaultInstance())) {
      assertThat(shrunk.layout().blocks()).hasSize(keptBlocks.size());
      float[] logits = shrunk.logits(shrunk.forward(new int[][] {tokens}), 0);
      double worst = 0;
      double scale = 0;
      for (int i = 0; i < logits.length; i++) {
        worst = Math.max(worst, Math.abs(logits[i] - expected[i]));
        scale = Math.max(scale, Math.abs(expected[i]));
      }
      assertThat(worst).as("%s: largest |logit - zeroed source logit| (logits up to %.1f)", arch, scale).isLessThanOrEqualTo(1e-4 * Math.max(1, scale));
    }
  }

  /** The source model, block by block, with the plan's removed structures zeroed and dropped blocks skipped. */
  private static float[] zeroedSourceLogits(ModelArchive source, ShrinkPlan plan, int[] tokens) throws IOException {
    ModelShape shape = plan.source();
    int hidden = shape.hidden();
    int qWidth = shape.heads() * shape.headDim();
    try (DecoderModel model = Models.open(source, NetlibLinearAlgebra.defaultInstance())) {
      HiddenStates h = model.embed(new int[][] {tokens});
      for (KeptBlock kept : plan.blocks()) {
        BlockWeights w = model.loadBlock(kept.source());
        String p = "model.layers." + kept.source() + ".";
        boolean[] keepGroup = mask(kept.kvGroups(), shape.kvHeads());
        float[] o = w.tensor(p + "self_attn.o_proj.weight").clone();
        int groupWidth = shape.headsPerGroup() * shape.headDim();
        for (int r = 0; r < hidden; r++) {
          for (int c = 0; c < qWidth; c++) {
            if (!keepGroup[c / groupWidth]) {
              o[r * qWidth + c] = 0;
            }
          }
        }
        w = w.withTensor(p + "self_attn.o_proj.weight", o);
        if (!shape.isSparse(kept.source())) {
          int width = shape.intermediate();
          boolean[] keepChannel = mask(kept.mlpChannels(), width);
          float[] gate = w.tensor(p + "mlp.gate_proj.weight").clone();
          float[] down = w.tensor(p + "mlp.down_proj.weight").clone();
          for (int j = 0; j < width; j++) {
            if (!keepChannel[j]) {
              java.util.Arrays.fill(gate, j * hidden, (j + 1) * hidden, 0f);
              for (int r = 0; r < hidden; r++) {
                down[r * width + j] = 0;
              }
            }
          }
          w = w.withTensor(p + "mlp.gate_proj.weight", gate).withTensor(p + "mlp.down_proj.weight", down);
        }
        h = model.runBlock(w, h, InputHook.NONE);
      }
      return model.logits(h, 0);
    }
  }

  private static boolean[] mask(int[] kept, int total) {
    boolean[] mask = new boolean[total];
    for (int i : kept) {
      mask[i] = true;
    }
    return mask;
  }

  /** 64 ids of stories260K's vocabulary (the model needs no tokenizer for this comparison). */
  private static int[] storyTokens() {
    int[] tokens = new int[64];
    tokens[0] = 1;
    for (int t = 1; t < tokens.length; t++) {
      tokens[t] = (37 * t + 11) % 500 + 3;
    }
    return tokens;
  }
}
