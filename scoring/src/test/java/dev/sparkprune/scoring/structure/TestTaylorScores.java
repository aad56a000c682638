package dev.sparkprune.scoring.structure;

import static org.assertj.core.api.Assertions.assertThat;

import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/** LLM-Pruner's first-order importance on hand-sized weights, each sum written out here. */
class TestTaylorScores {
  @Test
  void mlpChannelSumsItsGateAndUpRowsAndDownColumn() {
    // hidden 2, intermediate 3.
    float[] gate = {1, -2, 3, 4, -5, 6};
    double[] gateGradient = {0.5, 0.5, -1, 1, 0, 2};
    float[] up = {1, 1, 1, 1, 1, 1};
    double[] upGradient = {1, 2, 3, 4, 5, 6};
    float[] down = {2, 0, -1, 1, 1, 1};
    double[] downGradient = {1, 1, 1, -2, 3, 4};
    double[] scores = TaylorScores.mlpChannels(gate, gateGradient, up, upGradient, down, downGradient, 2, 3);
    assertThat(scores[0]).isCloseTo((0.5 + 1) + (1 + 2) + (2 + 2), Offset.offset(1e-12));
    assertThat(scores[1]).isCloseTo((3 + 4) + (3 + 4) + (0 + 3), Offset.offset(1e-12));
    assertThat(scores[2]).isCloseTo((0 + 12) + (5 + 6) + (1 + 4), Offset.offset(1e-12));
  }

  @Test
  void kvGroupSumsItsHeadsQueryRowsOutputColumnsAndKeyValueRows() {
    // hidden 1, 4 heads of dim 1 in 2 KV groups: heads 0-1 read KV head 0, heads 2-3 KV head 1.
    AttentionGroups groups = new AttentionGroups(4, 2, 1);
    float[] q = {1, 2, 3, 4};
    float[] k = {1, -1};
    float[] v = {2, 2};
    float[] o = {1, 1, 1, 1};
    double[] ones4 = {1, 1, 1, 1};
    double[] qGradient = {1, -1, 0.5, 0};
    double[] kvGradient = {3, 3};
    double[] scores = TaylorScores.kvGroups(q, qGradient, k, kvGradient, v, kvGradient, o, ones4, 1, groups);
    assertThat(scores[0]).isCloseTo((1 + 2) + (1 + 1) + 3 + 6, Offset.offset(1e-12));
    assertThat(scores[1]).isCloseTo((1.5 + 0) + (1 + 1) + 3 + 6, Offset.offset(1e-12));
  }

  @Test
  void expertSumsAllItsWeights() {
    assertThat(TaylorScores.expert(new float[][] {{1, -2}, {3}}, new double[][] {{2, 2}, {-1}})).isCloseTo(2 + 4 + 3, Offset.offset(1e-12));
  }
}
