package dev.sparkprune.jobs.prune.allocation;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.SparsityTarget;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/** OWL's rule from outlier ratios to block targets, without Spark. */
class TestOwlTargets {

  @Test
  void ratiosSpreadOverTwoLambdaAroundTheTargetDensity() {
    double[] ratios = {1, 2, 3, 4, 5};
    SparsityTarget[] targets = OwlAllocation.targets(ratios, SparsityTarget.unstructured(0.5), 0.08);
    // Densities 0.42, 0.46, 0.50, 0.54, 0.58: more outliers, less pruning.
    double[] expected = {0.58, 0.54, 0.50, 0.46, 0.42};
    for (int b = 0; b < 5; b++) {
      assertThat(targets[b].ratio()).isCloseTo(expected[b], Offset.offset(1e-12));
    }
  }

  @Test
  void equalRatiosGiveUniformTargetsAndExtremesAreClamped() {
    SparsityTarget[] same = OwlAllocation.targets(new double[] {3, 3, 3}, SparsityTarget.unstructured(0.7), 0.08);
    for (SparsityTarget target : same) {
      assertThat(target.ratio()).isCloseTo(0.7, Offset.offset(1e-12));
    }
    SparsityTarget[] clamped = OwlAllocation.targets(new double[] {0, 10}, SparsityTarget.unstructured(0.97), 0.45);
    assertThat(clamped[0].ratio()).isEqualTo(OwlAllocation.MAX_SPARSITY);
  }

  @Test
  void nOfMBlocksGetTheNearestNOfTheirOwn() {
    SparsityTarget[] targets = OwlAllocation.targets(new double[] {1, 2, 3, 4, 5}, SparsityTarget.nOfM(4, 8), 0.1);
    // Sparsities 0.6, 0.55, 0.5, 0.45, 0.4 of 8: N = 5, 4 (4.4), 4, 4 (3.6), 3 (3.2).
    assertThat(targets).extracting(SparsityTarget::toString).containsExactly("5:8", "4:8", "4:8", "4:8", "3:8");
  }
}
