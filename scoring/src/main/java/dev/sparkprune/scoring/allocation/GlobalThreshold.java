package dev.sparkprune.scoring.allocation;

import dev.sparkprune.tensorio.ValidationException;
import java.util.List;
import java.util.TreeSet;

/**
 * One score threshold over all layers: prune every score <= t so that the pruned count reaches
 * {@code target} (to within ties), while no layer loses more than its cap (its size minus the
 * {@code --min-keep} fraction). The pruned count at a threshold is sum_l min(count_l(<= t), cap_l),
 * monotone in t, so the smallest bucket where it reaches the target is found from per-layer
 * histograms: coarse (high 16 key bits), then fine (low 16 bits) inside the boundary bucket.
 */
public final class GlobalThreshold {
  private GlobalThreshold() {}

  /** The smallest coarse bucket at which the capped pruned count reaches {@code target}. */
  public static int boundaryBucket(List<ScoreHistogram> coarse, long[] caps, long target) {
    return smallestReaching(coarse, caps, target, new long[caps.length]);
  }

  /**
   * The exact threshold key: {@code below[l]} is layer l's count in buckets below the boundary
   * bucket, {@code fine} its fine histogram inside it.
   */
  public static int thresholdKey(int boundary, List<ScoreHistogram> fine, long[] below, long[] caps, long target) {
    int low = smallestReaching(fine, caps, target, below);
    return (boundary << 16) | low;
  }

  private static int smallestReaching(List<ScoreHistogram> histograms, long[] caps, long target, long[] base) {
    ValidationException.check(histograms.size() == caps.length, "Histograms and caps disagree: %d vs %d", histograms.size(), caps.length);
    TreeSet<Integer> candidates = new TreeSet<>();
    histograms.forEach(histogram -> {
      for (int bucket : histogram.buckets()) {
        candidates.add(bucket);
      }
    });
    for (int bucket : candidates) {
      long pruned = 0;
      for (int l = 0; l < caps.length; l++) {
        pruned += Math.min(base[l] + histograms.get(l).countAtOrBelow(bucket), caps[l]);
      }
      if (pruned >= target) {
        return bucket;
      }
    }
    return candidates.isEmpty() ? 0 : candidates.last();
  }

  /** The key of a threshold value. */
  public static int thresholdKeyOf(float value) {
    return ScoreHistogram.key(value);
  }

  /** The float value of a threshold key. */
  public static float value(int key) {
    return Float.intBitsToFloat(key);
  }
}
