package dev.sparkprune.jobs.plan;

import java.io.Serializable;

/**
 * A contiguous run [first, end) of one block's routed experts: what one expert task holds.
 * {@code bytes} is what the --expert-task-mb budget bounds: the experts' float weights plus the
 * statistics the method keeps for their input groups.
 */
public record ExpertGroup(int index, int first, int end, long bytes) implements Serializable {
  public ExpertGroup {
    if (index < 0 || first < 0 || end <= first) {
      throw new IllegalArgumentException("Invalid expert group " + index + ": [" + first + ", " + end + ")");
    }
  }

  public int size() {
    return end - first;
  }

  public boolean contains(int expert) {
    return expert >= first && expert < end;
  }
}
