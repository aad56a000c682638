package dev.sparkprune.scoring.methods;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.Fixture;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The method registry, the composition of post-steps, and the inputs a method can ask for. */
class TestPruners {
  private static final ComputeBackend CPU = CpuBackend.defaultInstance();

  private static LinearInputs inputs(Fixture fixture, String layer) {
    return LinearInputs.of(layer, fixture.weights())
        .withStatistics(TestGoldenFixtures.accumulate(fixture, CalibrationStatistics.HessianStorage.DOUBLE));
  }

  @Test
  void theRegistrysPrunersGiveTheReferenceMasks() {
    Fixture fixture = Fixture.load("odd");
    for (String tag : Fixture.TAGS) {
      for (PruningMethod method : new PruningMethod[] {PruningMethod.MAGNITUDE, PruningMethod.WANDA, PruningMethod.SPARSEGPT}) {
        Mask mask = method.pruner().prune(inputs(fixture, "W"), Fixture.target(tag), CPU, 2).mask();
        assertThat(mask).as("%s %s", method, tag).isEqualTo(fixture.mask(method.displayName(), tag));
      }
    }
  }

  @Test
  void aMethodWithoutItsStatisticsSaysSo() {
    Fixture fixture = Fixture.load("small");
    LinearInputs bare = LinearInputs.of("model.layers.0.mlp.up_proj.weight", fixture.weights());
    SparsityTarget half = SparsityTarget.unstructured(0.5);
    assertThat(PruningMethod.MAGNITUDE.pruner().prune(bare, half, CPU, 1).mask()).isEqualTo(fixture.mask("magnitude", "u50"));
    assertThatThrownBy(() -> PruningMethod.SPARSEGPT.pruner().prune(bare, half, CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer model.layers.0.mlp.up_proj.weight with sparsegpt: no calibration statistics");
    Refinement update = new Refinement(Refinement.Update.ADMM, Admm.DEFAULTS, false, Dsnot.DEFAULTS, "");
    assertThatThrownBy(() -> update.pruner(PruningMethod.MAGNITUDE, Wanda.Group.ROW).prune(bare, half, CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot update layer model.layers.0.mlp.up_proj.weight with ADMM: no calibration statistics");
  }

  @Test
  void refinementRunsDsnotOnTheMethodsMaskThenAdmmOnDsnotsMaskAndSkipsMatchingLayers() {
    Fixture fixture = Fixture.load("small");
    SparsityTarget target = SparsityTarget.unstructured(0.5);
    Dsnot.Settings oneCycle = new Dsnot.Settings(1, 0.0, 1.0);
    Refinement both = new Refinement(Refinement.Update.ADMM, Admm.DEFAULTS, true, oneCycle, ".*\\.mlp\\..*");
    Pruner pruner = both.pruner(PruningMethod.WANDA, Wanda.Group.ROW);

    LinearInputs attention = inputs(fixture, "model.layers.0.self_attn.q_proj.weight");
    Mask wanda = PruningMethod.WANDA.pruner().prune(attention, target, CPU, 1).mask();
    PruneResult refined = pruner.prune(attention, target, CPU, 1);
    // One DSnoT cycle swaps one pruned weight back in per row: the mask moved, the sparsity did not.
    assertThat(refined.mask()).isNotEqualTo(wanda);
    assertThat(refined.mask().prunedCount()).isEqualTo(wanda.prunedCount());
    assertThat(differences(refined.mask(), wanda)).isLessThanOrEqualTo(2 * 48);
    // ADMM kept DSnoT's mask and changed the kept weights.
    Mask dsnot = Dsnot.refine(
        attention.layer(), attention.weights(), wanda, attention.statistics().orElseThrow(), target, oneCycle, 1).mask();
    assertThat(refined.mask()).isEqualTo(dsnot);
    float[] dense = fixture.weights().values();
    boolean updated = false;
    for (int r = 0; r < 48; r++) {
      for (int c = 0; c < 128; c++) {
        updated |= refined.mask().isKept(r, c) && refined.weights()[r * 128 + c] != dense[r * 128 + c];
        assertThat(refined.mask().isKept(r, c) || refined.weights()[r * 128 + c] == 0f).isTrue();
      }
    }
    assertThat(updated).isTrue();

    LinearInputs mlp = inputs(fixture, "model.layers.0.mlp.up_proj.weight");
    assertThat(pruner.prune(mlp, target, CPU, 1).mask()).as("DSnoT skips MLP linears").isEqualTo(wanda);
  }

  @Test
  void gradualAdmmChoosesItsOwnMaskInsteadOfTheMethod() {
    Fixture fixture = Fixture.load("small");
    SparsityTarget target = SparsityTarget.nOfM(2, 4);
    Refinement gradual = new Refinement(Refinement.Update.ADMM_GRADUAL, Admm.DEFAULTS, false, Dsnot.DEFAULTS, "");
    PruneResult result = gradual.pruner(PruningMethod.WANDA, Wanda.Group.ROW).prune(inputs(fixture, "W"), target, CPU, 2);
    assertThat(result.mask()).isNotEqualTo(fixture.mask("wanda", "2of4"));
    for (int r = 0; r < 48; r++) {
      for (int g = 0; g < 128; g += 4) {
        int kept = 0;
        for (int c = g; c < g + 4; c++) {
          kept += result.mask().isKept(r, c) ? 1 : 0;
        }
        assertThat(kept).as("row %d group %d", r, g).isEqualTo(2);
      }
    }
  }

  /**
   * A method that scores with a per-weight statistic (here |W| * |G|, the gradient term of
   * GBLM) is one class like this plus a registry entry: it reads the gradient from its inputs and
   * selects with the backend.
   */
  private static final Pruner GRADIENT_MAGNITUDE = (inputs, target, backend, threads) -> {
    float[] w = inputs.weights().values();
    float[] g = inputs.requireGradient("gradient magnitude").values();
    int cols = inputs.weights().cols();
    return RowMasks.pruneLowestPerRow(inputs.weights(), (row, scores) -> {
      for (int c = 0; c < cols; c++) {
        scores[c] = Math.abs(w[row * cols + c]) * Math.abs(g[row * cols + c]) + 0f;
      }
    }, target, backend, threads);
  };

  @Test
  void aMethodCanReadAPerWeightGradientStatistic() {
    Fixture fixture = Fixture.load("odd");
    Weights weights = fixture.weights();
    int rows = weights.rows();
    int cols = weights.cols();
    SplittableRandom random = new SplittableRandom(7);
    float[] gradient = new float[rows * cols];
    for (int i = 0; i < gradient.length; i++) {
      gradient[i] = (float) random.nextGaussian();
    }
    LinearInputs inputs = LinearInputs.of("W", weights).withGradient(Weights.of(rows, cols, gradient));
    Mask mask = GRADIENT_MAGNITUDE.prune(inputs, SparsityTarget.unstructured(0.5), CPU, 2).mask();
    float[] w = weights.values();
    for (int r = 0; r < rows; r++) {
      int row = r;
      Integer[] order = IntStream.range(0, cols).boxed().toArray(Integer[]::new);
      Arrays.sort(order, Comparator.comparingDouble(c -> Math.abs(w[row * cols + c]) * Math.abs(gradient[row * cols + c])));
      boolean[] pruned = new boolean[cols];
      for (int i = 0; i < cols / 2; i++) {
        pruned[order[i]] = true;
      }
      for (int c = 0; c < cols; c++) {
        assertThat(mask.isKept(r, c)).as("[%d, %d]", r, c).isEqualTo(!pruned[c]);
      }
    }

    assertThatThrownBy(() -> GRADIENT_MAGNITUDE.prune(LinearInputs.of("W", weights), SparsityTarget.unstructured(0.5), CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer W with gradient magnitude: no gradient statistics");
    assertThatThrownBy(() -> LinearInputs.of("W", weights).withGradient(Weights.of(rows, cols - 1, new float[rows * (cols - 1)])))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer W: its gradient is [37, 199] but the weight is [37, 200]");
  }

  private static int differences(Mask a, Mask b) {
    int count = 0;
    for (int r = 0; r < a.rows(); r++) {
      for (int c = 0; c < a.cols(); c++) {
        count += a.isKept(r, c) != b.isKept(r, c) ? 1 : 0;
      }
    }
    return count;
  }
}
