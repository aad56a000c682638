package dev.sparkprune.jobs.plan;

/**
 * An executor as the plan sees it: its heap and how many tasks it runs at once. In local mode
 * the driver's JVM is the executor (its maximum heap, local[N]'s N).
 */
public record ExecutorShape(long memoryBytes, int cores) {
  public ExecutorShape {
    if (memoryBytes <= 0 || cores < 1) {
      throw new IllegalArgumentException("Invalid executor shape: " + memoryBytes + " bytes, " + cores + " cores");
    }
  }

  /** One task's share of the heap. */
  public long taskBytes() {
    return memoryBytes / cores;
  }
}
