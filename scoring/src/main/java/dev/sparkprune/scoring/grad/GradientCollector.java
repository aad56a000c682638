package dev.sparkprune.scoring.grad;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A {@link GradientSink} that keeps {@link GradientStatistics} of chosen weights, adding samples
 * in the order the pass gives them (sequence order), and each block's summed first-order removal
 * change: everything one process needs from a {@link GradientPass}.
 */
public final class GradientCollector implements GradientSink {
  private final Set<String> tensors;
  private final Map<String, GradientStatistics> statistics = new LinkedHashMap<>();
  private final Map<Integer, Double> removalChanges = new LinkedHashMap<>();

  /** Keeps the weights named in {@code tensors} (an empty set keeps every weight the pass reports). */
  public GradientCollector(Set<String> tensors) {
    this.tensors = Set.copyOf(tensors);
  }

  @Override
  public void accept(int sequence, int block, String tensor, int rows, int cols, float[] gradient) {
    if (tensors.isEmpty() || tensors.contains(tensor)) {
      statistics.computeIfAbsent(tensor, name -> GradientStatistics.create(rows, cols)).add(gradient);
    }
  }

  @Override
  public void acceptBlockRemoval(int sequence, int block, double firstOrderChange) {
    removalChanges.merge(block, firstOrderChange, Double::sum);
  }

  public Map<String, GradientStatistics> statistics() {
    return Collections.unmodifiableMap(statistics);
  }

  /**
   * A block's first-order Taylor importance: |mean over samples of dLoss/dOutput . (input -
   * output)|, the first-order change in the mean loss when the block's residual branch is removed.
   */
  public double blockImportance(int block, long samples) {
    return Math.abs(removalChanges.getOrDefault(block, 0.0) / samples);
  }
}
