package dev.sparkprune.scoring.methods;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.Fixture;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Masks must equal the reference implementations' exactly and SparseGPT's weights to 1e-4, for
 * every fixture and target, with native BLAS (where installed) and with the Java fallback.
 */
class TestGoldenFixtures {
  private static final LinearAlgebra NATIVE = NetlibLinearAlgebra.defaultInstance();
  private static final LinearAlgebra JAVA = NetlibLinearAlgebra.javaOnly();
  private static final ComputeBackend CPU = CpuBackend.defaultInstance();

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    for (String name : Fixture.NAMES) {
      for (String tag : Fixture.TAGS) {
        cases.add(Arguments.of(name, tag));
      }
    }
    return cases.stream();
  }

  private static void assertSameMask(Mask actual, Mask expected, String what) {
    if (!actual.equals(expected)) {
      int differences = 0;
      String first = null;
      for (int r = 0; r < expected.rows(); r++) {
        for (int c = 0; c < expected.cols(); c++) {
          if (actual.isKept(r, c) != expected.isKept(r, c)) {
            differences++;
            first = first == null ? "[" + r + ", " + c + "]" : first;
          }
        }
      }
      throw new AssertionError(what + ": " + differences + " mask entries differ, first at " + first);
    }
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void magnitudeMatchesTheReference(String name, String tag) {
    Fixture fixture = Fixture.load(name);
    PruneResult result = Magnitude.prune("W", fixture.weights(), Fixture.target(tag), Magnitude.Scope.MATRIX, CPU, 2);
    assertSameMask(result.mask(), fixture.mask("magnitude", tag), name + " magnitude " + tag);
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void wandaMatchesTheReference(String name, String tag) {
    Fixture fixture = Fixture.load(name);
    PruneResult result =
        Wanda.prune("W", fixture.weights(), fixture.floats("wanda_scaler_row"), Fixture.target(tag), Wanda.Group.ROW, CPU, 2);
    assertSameMask(result.mask(), fixture.mask("wanda", tag), name + " wanda " + tag);
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void wandaFromAccumulatedActivationsMatchesTheReference(String name, String tag) {
    Fixture fixture = Fixture.load(name);
    CalibrationStatistics statistics = accumulate(fixture, CalibrationStatistics.HessianStorage.NONE);
    float[] expected = fixture.floats("wanda_scaler_row");
    float[] actual = statistics.scalerRow();
    for (int j = 0; j < expected.length; j++) {
      assertThat(actual[j]).as("scaler_row[%d]", j).isCloseTo(expected[j], org.assertj.core.data.Percentage.withPercentage(1e-4));
    }
    PruneResult result = Wanda.prune("W", fixture.weights(), actual, Fixture.target(tag), Wanda.Group.ROW, CPU, 2);
    assertSameMask(result.mask(), fixture.mask("wanda", tag), name + " wanda (accumulated) " + tag);
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void sparseGptMatchesTheReferenceWithNativeAndJavaBlas(String name, String tag) {
    Fixture fixture = Fixture.load(name);
    float[] expectedWeights = fixture.floats("sparsegpt_" + tag + "_weight");
    for (LinearAlgebra linalg : List.of(NATIVE, JAVA)) {
      PruneResult result =
          SparseGpt.prune("W", fixture.weights(), fixture.hessian(), Fixture.target(tag), 0.01, 128, new CpuBackend(linalg), 2);
      assertSameMask(result.mask(), fixture.mask("sparsegpt", tag), name + " sparsegpt " + tag + " " + linalg.description());
      float[] weights = result.weights();
      float worst = 0;
      for (int i = 0; i < weights.length; i++) {
        worst = Math.max(worst, Math.abs(weights[i] - expectedWeights[i]));
      }
      assertThat(worst).as("max |w - w_ref| for %s %s (%s)", name, tag, linalg.description()).isLessThanOrEqualTo(1e-4f);
      assertThat(result.reconstructionLoss()).isPresent();
      assertThat(result.damping()).hasValue(0.01);
    }
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void sparseGptFromAccumulatedHessianMatchesTheReference(String name, String tag) {
    Fixture fixture = Fixture.load(name);
    CalibrationStatistics statistics = accumulate(fixture, CalibrationStatistics.HessianStorage.DOUBLE);
    double[] hessian = statistics.hessian();
    double[] expected = fixture.hessian();
    for (int i = 0; i < expected.length; i++) {
      assertThat(hessian[i]).isCloseTo(expected[i], org.assertj.core.data.Offset.offset(1e-5 * (1 + Math.abs(expected[i]))));
    }
    PruneResult result = SparseGpt.prune("W", fixture.weights(), hessian, Fixture.target(tag), 0.01, 128, new CpuBackend(NATIVE), 2);
    assertSameMask(result.mask(), fixture.mask("sparsegpt", tag), name + " sparsegpt (accumulated) " + tag);
  }

  /** The fixture's X is 8 sequences of 32 tokens; add them one sequence at a time. */
  static CalibrationStatistics accumulate(Fixture fixture, CalibrationStatistics.HessianStorage storage) {
    float[] x = fixture.floats("X");
    CalibrationStatistics statistics = CalibrationStatistics.create(fixture.cols, storage);
    for (int sequence = 0; sequence < 8; sequence++) {
      statistics.add(x, sequence * 32 * fixture.cols, 32, 1, NATIVE);
    }
    return statistics;
  }

}
