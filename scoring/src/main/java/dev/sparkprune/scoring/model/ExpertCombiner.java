package dev.sparkprune.scoring.model;

/**
 * Step 4 of a MoE block ({@link MoeBlock}): sums the routed experts' outputs, each scaled by its
 * tokens' routing weights, in ascending expert order. The order is fixed (and enforced), so the
 * sum is the same bits however the experts were computed: in one task, or group by group on
 * other tasks whose outputs come back in any order and are added here sorted.
 */
public final class ExpertCombiner {
  private final ExpertRouting routing;
  private final int width;
  private final float[] out;
  private int last = -1;

  public ExpertCombiner(ExpertRouting routing, int width) {
    this.routing = routing;
    this.width = width;
    this.out = new float[routing.tokens() * width];
  }

  /**
   * Adds expert {@code expert}'s unweighted output [rows x width] on {@link ExpertRouting#rows}
   * of it; experts must come in ascending order (those no token chose may be left out).
   */
  public void add(int expert, float[] output) {
    if (expert <= last) {
      throw new IllegalStateException("Cannot add expert " + expert + " after expert " + last + ": experts are combined in ascending order");
    }
    int[] rows = routing.rows(expert);
    float[] weights = routing.weights(expert);
    if (output.length != rows.length * width) {
      throw new IllegalArgumentException(
          "Invalid output of expert " + expert + ": " + output.length + " values for " + rows.length + " rows x " + width);
    }
    last = expert;
    for (int i = 0; i < rows.length; i++) {
      float weight = weights[i];
      int target = rows[i] * width;
      for (int c = 0; c < width; c++) {
        out[target + c] += output[i * width + c] * weight;
      }
    }
  }

  /** The weighted sum [tokens x width] of the experts added so far. */
  public float[] result() {
    return out;
  }
}
