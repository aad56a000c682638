package dev.sparkprune.scoring.grad;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.methods.Gblm;
import dev.sparkprune.scoring.methods.PrunerZero;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.IOException;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * GBLM and Pruner-Zero on stories260K against the authors' formulas evaluated by
 * grad_reference.py in torch (float32, as their prune scripts), from G = sqrt(sum_s (100 g_s)^2)
 * of torch.autograd over transformers in float64 and Wanda's scaler_row from forward hooks, over
 * 8 sequences of 128 tokens.
 */
class TestGradientScoresAgainstTorch {
  @Test
  void masksEqualTheAuthorsFormulasOnStories260K() throws IOException {
    try (TorchReference reference = TorchReference.open("stories260K-scores");
        DecoderModel model = Models.open(ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString()), NetlibLinearAlgebra.defaultInstance())) {
      int compared = 0;
      for (Linear linear : model.layout().linears()) {
        String name = linear.tensorName();
        Weights weights = Weights.of((int) linear.outFeatures(), (int) linear.inFeatures(), model.loadBlock(linear.block()).tensor(name));
        float[] scalerRow = reference.floats("scaler_row." + name);
        float[] gradient = reference.floats("g_l2." + name);
        for (String tag : new String[] {"u50", "2of4"}) {
          SparsityTarget target = tag.equals("u50") ? SparsityTarget.unstructured(0.5) : SparsityTarget.nOfM(2, 4);
          PruneResult gblm = Gblm.prune(name, weights, scalerRow, gradient, target, CpuBackend.defaultInstance(), 2);
          assertThat(gblm.mask()).as("GBLM %s %s", tag, name).isEqualTo(expectedMask(reference, "gblm_" + tag + "_mask." + name, weights));
          PruneResult prunerZero = PrunerZero.prune(name, weights, gradient, target, CpuBackend.defaultInstance(), 2);
          assertThat(prunerZero.mask()).as("Pruner-Zero %s %s", tag, name).isEqualTo(expectedMask(reference, "prunerzero_" + tag + "_mask." + name, weights));
          compared++;
        }
      }
      assertThat(compared).isEqualTo(2 * 35);
    }
  }

  @Test
  void gradientStatisticsMatchTheReferenceL2() throws IOException {
    try (TorchReference reference = TorchReference.open("stories260K-scores");
        DecoderModel model = Models.open(ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString()), NetlibLinearAlgebra.defaultInstance())) {
      GradientCollector collector = new GradientCollector(Set.of());
      GradientPass.of(model).run(reference.tokens(), collector);
      Map<String, GradientStatistics> statistics = collector.statistics();
      for (Linear linear : model.layout().linears()) {
        float[] expected = reference.floats("g_l2." + linear.tensorName());
        GradientStatistics actual = statistics.get(linear.tensorName());
        assertThat(actual.samples()).isEqualTo(8);
        float[] l2 = actual.l2();
        double scale = 0;
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
          scale = Math.max(scale, expected[i]);
          worst = Math.max(worst, Math.abs(l2[i] - expected[i]));
        }
        assertThat(worst).as("largest |G - reference| of %s (largest G %s)", linear.tensorName(), scale).isLessThanOrEqualTo(5e-5 * scale);
      }
    }
  }

  private static Mask expectedMask(TorchReference reference, String tensor, Weights weights) throws IOException {
    return Mask.fromPrunedFlags(weights.rows(), weights.cols(), reference.bytes(tensor));
  }
}
