package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.jobs.prune.plan.PlannedLinear;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Groups the linears of a scoring stage into Spark tasks by bytes, so 128 experts x 3 small
 * linears per block do not become 384 tasks: in plan order, a task takes linears until their
 * float weights reach the share of the stage's bytes that one task should carry, which is the
 * target size (--scoring-task-mb), or less when the stage is small, so that a stage still has
 * at least {@code minTasks} tasks (the cluster's parallelism) where it has that many linears.
 * The grouping depends only on the plan and these two numbers; outputs never depend on it,
 * since every linear is scored on its own.
 */
final class ScoringTasks {
  private ScoringTasks() {}

  /** Float bytes a linear's weights take in a task. */
  static long bytes(PlannedLinear planned) {
    return 4L * planned.linear.parameters();
  }

  static List<List<PlannedLinear>> group(List<PlannedLinear> linears, long targetBytes, int minTasks) {
    long total = 0;
    for (PlannedLinear planned : linears) {
      total += bytes(planned);
    }
    int wanted = (int) Math.min(linears.size(), Math.max(Math.max(1, minTasks), (total + targetBytes - 1) / targetBytes));
    long share = Math.max(1, Math.min(targetBytes, (total + wanted - 1) / Math.max(1, wanted)));
    List<List<PlannedLinear>> groups = new ArrayList<>();
    List<PlannedLinear> current = new ArrayList<>();
    long currentBytes = 0;
    for (PlannedLinear planned : linears) {
      if (!current.isEmpty() && currentBytes + bytes(planned) > share) {
        groups.add(current);
        current = new ArrayList<>();
        currentBytes = 0;
      }
      current.add(planned);
      currentBytes += bytes(planned);
    }
    if (!current.isEmpty()) {
      groups.add(current);
    }
    return groups;
  }

  /** Each linear's task index, for the partitioner of the keyed (SparseGPT) path. */
  static Map<String, Integer> taskIndex(List<List<PlannedLinear>> groups) {
    Map<String, Integer> index = new HashMap<>();
    for (int task = 0; task < groups.size(); task++) {
      for (PlannedLinear planned : groups.get(task)) {
        index.put(planned.tensorName(), task);
      }
    }
    return index;
  }
}
