package dev.sparkprune.scoring.methods;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Properties every result must have, on random inputs of awkward shapes; and bad input. */
class TestKernelInvariants {
  private static final ComputeBackend CPU = CpuBackend.defaultInstance();

  private static Weights randomWeights(int rows, int cols, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] values = new float[rows * cols];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (random.nextDouble() * 2 - 1);
    }
    return Weights.of(rows, cols, values);
  }

  private static float[] randomScaler(int cols, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] scaler = new float[cols];
    for (int j = 0; j < cols; j++) {
      scaler[j] = (float) (random.nextDouble() * 4);
    }
    return scaler;
  }

  /** H = 2/n X^T X for random X with more tokens than channels: positive definite. */
  private static double[] randomHessian(int cols, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    int tokens = cols * 2;
    double[] x = new double[tokens * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = random.nextDouble() - 0.5;
    }
    double[] h = new double[cols * cols];
    for (int t = 0; t < tokens; t++) {
      for (int i = 0; i < cols; i++) {
        for (int j = 0; j < cols; j++) {
          h[i * cols + j] += 2.0 / 4 * x[t * cols + i] * x[t * cols + j];
        }
      }
    }
    return h;
  }

  private static void assertMaskedCopy(Weights input, PruneResult result) {
    Mask mask = result.mask();
    for (int r = 0; r < input.rows(); r++) {
      for (int c = 0; c < input.cols(); c++) {
        float actual = result.weights()[r * input.cols() + c];
        if (mask.isKept(r, c)) {
          assertThat(Float.floatToRawIntBits(actual)).isEqualTo(Float.floatToRawIntBits(input.get(r, c)));
        } else {
          assertThat(actual).isEqualTo(0f);
        }
      }
    }
  }

  private static void assertNofM(Mask mask, int pruned, int groupSize) {
    for (int r = 0; r < mask.rows(); r++) {
      for (int g = 0; g < mask.cols(); g += groupSize) {
        int prunedInGroup = 0;
        for (int c = g; c < g + groupSize; c++) {
          prunedInGroup += mask.isKept(r, c) ? 0 : 1;
        }
        assertThat(prunedInGroup).as("row %d group at %d", r, g).isEqualTo(pruned);
      }
    }
  }

  @Test
  void wandaAndRowMagnitudePruneExactlyFloorColsTimesSPerRow() {
    Weights weights = randomWeights(13, 77, 1);
    for (double s : List.of(0.0, 0.1, 0.5, 0.7, 0.99)) {
      SparsityTarget target = SparsityTarget.unstructured(s);
      PruneResult wanda = Wanda.prune("l", weights, randomScaler(77, 2), target, Wanda.Group.ROW, CPU, 3);
      PruneResult magnitude = Magnitude.prune("l", weights, target, Magnitude.Scope.ROW, CPU, 3);
      for (PruneResult result : List.of(wanda, magnitude)) {
        for (int r = 0; r < 13; r++) {
          assertThat(77 - result.mask().keptInRow(r)).isEqualTo((int) (77 * s));
        }
        assertMaskedCopy(weights, result);
      }
    }
  }

  @Test
  void stableTiesPruneTheLowerColumnFirst() {
    // Row of equal scores: the first floor(cols * s) columns go, as a stable sort orders them.
    Weights weights = Weights.of(1, 8, new float[] {1, 1, 1, 1, 1, 1, 1, 1});
    Mask mask = Wanda.prune("l", weights, new float[] {1, 1, 1, 1, 1, 1, 1, 1}, SparsityTarget.unstructured(0.5), Wanda.Group.ROW, CPU, 1).mask();
    assertThat(mask.bits()).containsExactly((byte) 0b11110000);
    Mask groups = Magnitude.prune("l", weights, SparsityTarget.nOfM(2, 4), Magnitude.Scope.MATRIX, CPU, 1).mask();
    assertThat(groups.bits()).containsExactly((byte) 0b11001100);
  }

  @Test
  void magnitudeMatrixThresholdPrunesEveryWeightAtOrBelowIt() {
    Weights weights = randomWeights(9, 31, 3);
    PruneResult result = Magnitude.prune("l", weights, SparsityTarget.unstructured(0.6), Magnitude.Scope.MATRIX, CPU, 2);
    float largestPruned = 0;
    float smallestKept = Float.MAX_VALUE;
    for (int r = 0; r < 9; r++) {
      for (int c = 0; c < 31; c++) {
        float magnitude = Math.abs(weights.get(r, c));
        if (result.mask().isKept(r, c)) {
          smallestKept = Math.min(smallestKept, magnitude);
        } else {
          largestPruned = Math.max(largestPruned, magnitude);
        }
      }
    }
    assertThat(largestPruned).isLessThan(smallestKept);
    // Reference convention: index k = floor(numel * s) is the threshold and is itself pruned.
    assertThat(result.mask().prunedCount()).isEqualTo((long) (9 * 31 * 0.6) + 1);
    assertMaskedCopy(weights, result);
  }

  @Test
  void nOfMPatternsHoldForEveryMethod() {
    Weights weights = randomWeights(11, 48, 4);
    for (SparsityTarget target : List.of(SparsityTarget.nOfM(2, 4), SparsityTarget.nOfM(4, 8), SparsityTarget.nOfM(1, 3))) {
      assertNofM(Magnitude.prune("l", weights, target, Magnitude.Scope.MATRIX, CPU, 2).mask(), target.prunedPerGroup(), target.groupSize());
      assertNofM(Wanda.prune("l", weights, randomScaler(48, 5), target, Wanda.Group.ROW, CPU, 2).mask(), target.prunedPerGroup(), target.groupSize());
      PruneResult sparseGpt = SparseGpt.prune("l", weights, randomHessian(48, 6), target, 0.01, 128, CPU, 2);
      assertNofM(sparseGpt.mask(), target.prunedPerGroup(), target.groupSize());
      assertPrunedAreZero(sparseGpt);
    }
  }

  @Test
  void sparseGptBlocksNarrowerThanTheMatrixStillHitTheTargetAndZeroPrunedWeights() {
    Weights weights = randomWeights(20, 70, 7);
    PruneResult result = SparseGpt.prune("l", weights, randomHessian(70, 8), SparsityTarget.unstructured(0.5), 0.01, 16, CPU, 2);
    assertPrunedAreZero(result);
    // Each block prunes floor(rows * count * s) + 1 (threshold included) barring exact ties.
    long expected = 0;
    for (int i1 = 0; i1 < 70; i1 += 16) {
      expected += (long) (20 * Math.min(16, 70 - i1) * 0.5) + 1;
    }
    assertThat(result.mask().prunedCount()).isEqualTo(expected);
    assertThat(result.reconstructionLoss().getAsDouble()).isPositive();
  }

  private static void assertPrunedAreZero(PruneResult result) {
    Mask mask = result.mask();
    for (int r = 0; r < mask.rows(); r++) {
      for (int c = 0; c < mask.cols(); c++) {
        if (!mask.isKept(r, c)) {
          assertThat(result.weights()[r * mask.cols() + c]).isEqualTo(0f);
        }
      }
    }
  }

  @Test
  void resultsAreBitIdenticalForAnyThreadCount() {
    Weights weights = randomWeights(37, 200, 9);
    float[] scaler = randomScaler(200, 10);
    double[] hessian = randomHessian(200, 11);
    for (SparsityTarget target : List.of(SparsityTarget.unstructured(0.5), SparsityTarget.nOfM(2, 4))) {
      PruneResult wanda1 = Wanda.prune("l", weights, scaler, target, Wanda.Group.ROW, CPU, 1);
      PruneResult magnitude1 = Magnitude.prune("l", weights, target, Magnitude.Scope.ROW, CPU, 1);
      PruneResult sparseGpt1 = SparseGpt.prune("l", weights, hessian, target, 0.01, 128, CPU, 1);
      for (int threads : new int[] {2, 3, 8}) {
        assertThat(Wanda.prune("l", weights, scaler, target, Wanda.Group.ROW, CPU, threads).mask()).isEqualTo(wanda1.mask());
        assertThat(Magnitude.prune("l", weights, target, Magnitude.Scope.ROW, CPU, threads).mask()).isEqualTo(magnitude1.mask());
        PruneResult sparseGpt = SparseGpt.prune("l", weights, hessian, target, 0.01, 128, CPU, threads);
        assertThat(sparseGpt.mask()).isEqualTo(sparseGpt1.mask());
        assertThat(sparseGpt.weights()).isEqualTo(sparseGpt1.weights());
      }
    }
  }

  @Test
  void nanAndInfiniteWeightsNameTheLayerAndPosition() {
    float[] values = randomWeights(4, 8, 12).values().clone();
    values[2 * 8 + 5] = Float.NaN;
    Weights weights = Weights.of(4, 8, values);
    assertThatThrownBy(() -> Wanda.prune("model.layers.3.mlp.up_proj.weight", weights, randomScaler(8, 1), SparsityTarget.unstructured(0.5), Wanda.Group.ROW, CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer model.layers.3.mlp.up_proj.weight: weight [2, 5] is NaN");
    values[2 * 8 + 5] = Float.NEGATIVE_INFINITY;
    assertThatThrownBy(() -> Magnitude.prune("q", Weights.of(4, 8, values), SparsityTarget.unstructured(0.5), Magnitude.Scope.MATRIX, CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer q: weight [2, 5] is -Infinity");
  }

  @Test
  void sparsityOutsideTheUnitIntervalAndBadPatterns() {
    assertThatThrownBy(() -> SparsityTarget.unstructured(1.0)).isInstanceOf(ValidationException.class).hasMessage("Invalid sparsity 1.0: must be in [0, 1)");
    assertThatThrownBy(() -> SparsityTarget.unstructured(-0.1)).isInstanceOf(ValidationException.class).hasMessageContaining("must be in [0, 1)");
    assertThatThrownBy(() -> SparsityTarget.parse("4:4")).isInstanceOf(ValidationException.class).hasMessage("Invalid N:M pattern 4:4: need 0 < N < M");
    assertThatThrownBy(() -> SparsityTarget.parse("half")).isInstanceOf(ValidationException.class).hasMessageContaining("expected a ratio like 0.5");
    assertThat(SparsityTarget.parse("2:4").ratio()).isEqualTo(0.5);
    assertThatThrownBy(() -> Wanda.prune("o_proj", randomWeights(4, 10, 1), randomScaler(10, 1), SparsityTarget.nOfM(2, 4), Wanda.Group.ROW, CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer o_proj with pattern 2:4: M = 4 does not divide in_features 10");
  }

  @Test
  void statisticsWhoseShapeDoesNotMatchTheWeights() {
    Weights weights = randomWeights(4, 8, 13);
    assertThatThrownBy(() -> Wanda.prune("k_proj", weights, randomScaler(9, 1), SparsityTarget.unstructured(0.5), Wanda.Group.ROW, CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer k_proj with Wanda: statistics cover 9 input channels but the weight has 8");
    assertThatThrownBy(() -> SparseGpt.prune("k_proj", weights, new double[9 * 9], SparsityTarget.unstructured(0.5), 0.01, 128, CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer k_proj with SparseGPT: the Hessian has 81 entries, expected 8 x 8");
  }

  @Test
  void rankDeficientHessianIsHandledByDampingAndIndefiniteOneFailsClearly() {
    Weights weights = randomWeights(3, 4, 14);
    // Two identical input channels: X^T X is singular but positive semidefinite.
    double[] singular = {2, 2, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    PruneResult result = SparseGpt.prune("v_proj", weights, singular, SparsityTarget.unstructured(0.5), 0.01, 128, CPU, 1);
    assertThat(result.damping()).hasValue(0.01);
    // Not a Gram matrix at all (eigenvalue -2): no damping up to 1 x mean(diag H) helps.
    double[] indefinite = {1, 3, 0, 0, 3, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    assertThatThrownBy(() -> SparseGpt.prune("v_proj", weights, indefinite, SparsityTarget.unstructured(0.5), 0.01, 128, CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Cannot prune layer v_proj with SparseGPT: H + damping is not positive definite even with damping 1.0");
    double[] withNaN = singular.clone();
    withNaN[1] = Double.NaN;
    assertThatThrownBy(() -> SparseGpt.prune("v_proj", weights, withNaN, SparsityTarget.unstructured(0.5), 0.01, 128, CPU, 1))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot prune layer v_proj with SparseGPT: the Hessian holds NaN");
  }

  @Test
  void dampingIsRaisedWhenTheFirstCholeskyFails() {
    // Eigenvalues 2.05 and -0.05 (+ damping): fails at 1% of mean(diag) = 1, succeeds at 10%.
    double[] nearlyPsd = {1, 1.05, 1.05, 1};
    PruneResult result = SparseGpt.prune("l", randomWeights(2, 2, 15), nearlyPsd, SparsityTarget.unstructured(0.5), 0.01, 128, CPU, 1);
    assertThat(result.damping().getAsDouble()).isCloseTo(0.1, org.assertj.core.data.Offset.offset(1e-12));
  }
}
