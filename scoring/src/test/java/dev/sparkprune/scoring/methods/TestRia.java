package dev.sparkprune.scoring.methods;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.Fixture;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.Comparator;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** No reference fixture exists for RIA: check against a direct sort of the paper's score. */
class TestRia {
  private static final ComputeBackend CPU = CpuBackend.defaultInstance();

  @Test
  void masksEqualAStableSortOfTheDirectScore() {
    Fixture fixture = Fixture.load("odd");
    Weights weights = fixture.weights();
    float[] scaler = fixture.floats("wanda_scaler_row");
    int rows = weights.rows();
    int cols = weights.cols();
    PruneResult result = Ria.prune("W", weights, scaler, SparsityTarget.unstructured(0.5), 0.5, CPU, 2);
    Mask mask = result.mask();
    for (int r = 0; r < rows; r++) {
      double rowSum = 0;
      for (int c = 0; c < cols; c++) {
        rowSum += Math.abs(weights.get(r, c));
      }
      double[] scores = new double[cols];
      for (int c = 0; c < cols; c++) {
        double columnSum = 0;
        for (int i = 0; i < rows; i++) {
          columnSum += Math.abs(weights.get(i, c));
        }
        double magnitude = Math.abs(weights.get(r, c));
        double relative = (columnSum == 0 ? 0 : magnitude / columnSum) + magnitude / rowSum;
        scores[c] = relative * Math.pow(Math.sqrt(scaler[c]), 0.5);
      }
      int[] order = IntStream.range(0, cols).boxed().sorted(Comparator.comparingDouble(c -> scores[c])).mapToInt(Integer::intValue).toArray();
      boolean[] expectedPruned = new boolean[cols];
      for (int i = 0; i < cols / 2; i++) {
        expectedPruned[order[i]] = true;
      }
      for (int c = 0; c < cols; c++) {
        // Scores within float rounding of the cut could order differently; none are that close here.
        assertThat(!mask.isKept(r, c)).as("row %d col %d", r, c).isEqualTo(expectedPruned[c]);
      }
      assertThat(cols - mask.keptInRow(r)).isEqualTo(cols / 2);
    }
    // The dead input channel 3 has no activation: every row prunes it.
    assertThat(IntStream.range(0, rows).allMatch(r -> !mask.isKept(r, 3))).isTrue();
  }

  @Test
  void nOfMHoldsAndDiffersFromWanda() {
    Fixture fixture = Fixture.load("small");
    float[] scaler = fixture.floats("wanda_scaler_row");
    Mask ria = Ria.prune("W", fixture.weights(), scaler, SparsityTarget.nOfM(2, 4), 0.5, CPU, 2).mask();
    Mask wanda = Wanda.prune("W", fixture.weights(), scaler, SparsityTarget.nOfM(2, 4), Wanda.Group.ROW, CPU, 2).mask();
    for (int r = 0; r < ria.rows(); r++) {
      for (int g = 0; g < ria.cols(); g += 4) {
        int pruned = 0;
        for (int c = g; c < g + 4; c++) {
          pruned += ria.isKept(r, c) ? 0 : 1;
        }
        assertThat(pruned).isEqualTo(2);
      }
    }
    assertThat(ria).isNotEqualTo(wanda);
  }
}
