package dev.sparkprune.scoring.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.assertj.core.data.Offset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The tiled attention kernel against a direct double-precision computation of
 * softmax(mask(cap(scale Q K^T)), sink) V, query by query, over sequences longer than one tile;
 * values as wide as the queries, or not (MLA).
 */
class TestAttention {
  static Stream<Arguments> shapes() {
    float scale = (float) (1 / Math.sqrt(8));
    return Stream.of(
        Arguments.of("causal, one partial tile", 1, 100, 8, new AttentionShape(scale, 0, 0)),
        Arguments.of("causal, three tiles", 2, 2 * Layers.ATTENTION_TILE + 37, 8, new AttentionShape(scale, 0, 0)),
        Arguments.of("sliding window across tiles", 2, 2 * Layers.ATTENTION_TILE + 37, 8, new AttentionShape(scale, 0, 50)),
        Arguments.of("window longer than a tile, soft-capped", 1, 3 * Layers.ATTENTION_TILE, 8, new AttentionShape(0.3f, 2.0, Layers.ATTENTION_TILE + 5)),
        Arguments.of("sinks, sliding window (gpt-oss)", 2, Layers.ATTENTION_TILE + 37, 8,
            new AttentionShape(scale, 0, 40, new float[] {0.5f, -1f, 3f, 0f})),
        Arguments.of("values narrower than queries (MLA)", 1, Layers.ATTENTION_TILE + 9, 5, new AttentionShape(0.2f, 0, 0)),
        Arguments.of("values wider than queries", 1, 70, 12, new AttentionShape(0.2f, 0, 0)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void equalsTheDirectComputation(String name, int sequences, int length, int vDim, AttentionShape shape) {
    int heads = 4;
    int kvHeads = 2;
    int headDim = 8;
    SplittableRandom random = new SplittableRandom(length);
    float[] q = gaussian(random, sequences * length * heads * headDim);
    float[] k = gaussian(random, sequences * length * kvHeads * headDim);
    float[] v = gaussian(random, sequences * length * kvHeads * vDim);
    for (LinearAlgebra linalg : new LinearAlgebra[] {NetlibLinearAlgebra.defaultInstance(), NetlibLinearAlgebra.javaOnly()}) {
      float[] out = Layers.attention(linalg, q, k, v, sequences, length, heads, kvHeads, headDim, vDim, shape);
      for (int s = 0; s < sequences; s++) {
        for (int i = 0; i < length; i++) {
          for (int h = 0; h < heads; h++) {
            double[] expected = direct(q, k, v, s, i, h, length, heads, kvHeads, headDim, vDim, shape);
            for (int d = 0; d < vDim; d++) {
              int index = ((s * length + i) * heads + h) * vDim + d;
              assertThat((double) out[index]).as("%s, %s: sequence %d query %d head %d dim %d", name, linalg.description(), s, i, h, d)
                  .isCloseTo(expected[d], Offset.offset(2e-5));
            }
          }
        }
      }
    }
  }

  /**
   * Output of query i, head h: the textbook formula in double, keys j <= i inside the window,
   * the head's sink logit in the softmax's denominator only.
   */
  private static double[] direct(float[] q, float[] k, float[] v, int s, int i, int h, int length, int heads, int kvHeads, int headDim,
      int vDim, AttentionShape shape) {
    int g = h / (heads / kvHeads);
    int first = shape.window() > 0 ? Math.max(0, i - shape.window() + 1) : 0;
    double[] scores = new double[i + 1];
    double max = Double.NEGATIVE_INFINITY;
    for (int j = first; j <= i; j++) {
      double dot = 0;
      for (int d = 0; d < headDim; d++) {
        dot += (double) q[((s * length + i) * heads + h) * headDim + d] * k[((s * length + j) * kvHeads + g) * headDim + d];
      }
      double score = dot * shape.scale();
      scores[j] = shape.softcap() > 0 ? shape.softcap() * Math.tanh(score / shape.softcap()) : score;
      max = Math.max(max, scores[j]);
    }
    double sink = shape.sinks().length > 0 ? shape.sinks()[h] : Double.NEGATIVE_INFINITY;
    max = Math.max(max, sink);
    double sum = Math.exp(sink - max);
    for (int j = first; j <= i; j++) {
      scores[j] = Math.exp(scores[j] - max);
      sum += scores[j];
    }
    double[] out = new double[vDim];
    for (int j = first; j <= i; j++) {
      for (int d = 0; d < vDim; d++) {
        out[d] += scores[j] / sum * v[((s * length + j) * kvHeads + g) * vDim + d];
      }
    }
    return out;
  }

  private static float[] gaussian(SplittableRandom random, int count) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      // Box-Muller; scores of a few units make the softmax peaked enough to notice a wrong mask.
      values[i] = (float) (Math.sqrt(-2 * Math.log(1 - random.nextDouble())) * Math.cos(2 * Math.PI * random.nextDouble()));
    }
    return values;
  }
}
