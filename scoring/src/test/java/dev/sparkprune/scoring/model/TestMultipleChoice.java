package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.model.MultipleChoice.Accuracy;
import dev.sparkprune.tensorio.ValidationException;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/** acc, acc_norm and their standard error on hand-worked values (numpy/lm-eval conventions). */
class TestMultipleChoice {

  @Test
  void accTakesTheFirstLargestLogLikelihood() {
    assertThat(MultipleChoice.prediction(new double[] {-5, -2, -3})).isEqualTo(1);
    assertThat(MultipleChoice.prediction(new double[] {-2, -7, -2})).isZero();
    assertThat(MultipleChoice.prediction(new double[] {-2, Double.NaN, -1})).isEqualTo(1);
  }

  @Test
  void accNormDividesByTheChoiceLength() {
    // -6/12 = -0.5 beats -2/2 = -1 although -2 > -6.
    assertThat(MultipleChoice.normalizedPrediction(new double[] {-2, -6}, new int[] {2, 12})).isEqualTo(1);
    assertThat(MultipleChoice.normalizedPrediction(new double[] {-2, -6}, new int[] {2, 3})).isZero();
    // An empty choice: -1/0 = -inf never wins; 0/0 = NaN does, as np.argmax returns it.
    assertThat(MultipleChoice.normalizedPrediction(new double[] {-1, -3}, new int[] {0, 4})).isEqualTo(1);
    assertThat(MultipleChoice.normalizedPrediction(new double[] {-1, 0}, new int[] {4, 0})).isEqualTo(1);
    assertThatThrownBy(() -> MultipleChoice.normalizedPrediction(new double[] {-1, -2}, new int[] {3}))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid choice lengths: 1 for 2 choices");
  }

  @Test
  void stderrIsTheSampleStandardDeviationOverRootN() {
    // Scores 1,0,1,1: mean 0.75; squares 3*(0.0625) + 0.5625 = 0.75; /3 = 0.25; sd 0.5; /2 = 0.25.
    Accuracy accuracy = Accuracy.of(new double[] {1, 0, 1, 1});
    assertThat(accuracy.documents()).isEqualTo(4);
    assertThat(accuracy.mean()).isEqualTo(0.75);
    assertThat(accuracy.stderr()).isCloseTo(0.25, Offset.offset(1e-15));
    // Ten scores, three correct: sqrt(0.3 * 0.7 * 10 / 9) / sqrt(10) = sqrt(0.21 / 9).
    double[] ten = {1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
    assertThat(Accuracy.of(ten).stderr()).isCloseTo(Math.sqrt(0.21 / 9), Offset.offset(1e-15));
    assertThat(Accuracy.of(new double[] {1, 1}).stderr()).isZero();
  }

  @Test
  void oneDocumentHasNoStandardError() {
    Accuracy accuracy = Accuracy.of(new double[] {1});
    assertThat(accuracy.mean()).isEqualTo(1);
    assertThat(accuracy.stderr()).isNaN();
    assertThatThrownBy(() -> Accuracy.of(new double[0]))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot average the scores of no documents");
  }
}
