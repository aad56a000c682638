package dev.sparkprune.scoring.allocation;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.Arrays;

/**
 * A layer's mask under a global threshold: every score at or below the threshold key is pruned,
 * unless that exceeds the layer's cap, in which case exactly {@code cap} lowest scores go (ties
 * toward the lower index). Kept weights are the input's, pruned ones exactly zero.
 */
public final class ThresholdMask {
  private ThresholdMask() {}

  public static PruneResult prune(Weights weights, float[] scores, int thresholdKey, long cap) {
    int cols = weights.cols();
    // Keys of non-negative floats are non-negative ints: integer order is score order.
    long atOrBelow = 0;
    for (float score : scores) {
      atOrBelow += ScoreHistogram.key(score) <= thresholdKey ? 1 : 0;
    }
    boolean capped = atOrBelow > cap;
    int limit = thresholdKey;
    long ties = 0;
    if (capped) {
      // Exactly cap prunes: everything below the cap-th smallest key, then its ties by index.
      int[] keys = new int[scores.length];
      for (int i = 0; i < keys.length; i++) {
        keys[i] = ScoreHistogram.key(scores[i]);
      }
      Arrays.sort(keys);
      limit = cap == 0 ? -1 : keys[(int) cap - 1];
      long below = 0;
      for (int key : keys) {
        below += key < limit ? 1 : 0;
      }
      ties = cap - below;
    }
    Mask.Builder mask = Mask.builder(weights.rows(), cols);
    float[] out = weights.values().clone();
    for (int i = 0; i < scores.length; i++) {
      int key = ScoreHistogram.key(scores[i]);
      boolean prune = capped ? key < limit || key == limit && ties-- > 0 : key <= thresholdKey;
      if (prune) {
        mask.prune(i / cols, i % cols);
        out[i] = 0f;
      }
    }
    return PruneResult.masked(mask.build(), out);
  }
}
