package dev.sparkprune.jobs.prune;

import dev.sparkprune.scoring.stats.CalibrationStatistics;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** One chunk's partial statistics for one statistics key; folded in chunk order. */
final class ChunkStatistics implements Serializable {
  private static final long serialVersionUID = 1L;

  final int chunk;
  final CalibrationStatistics statistics;

  ChunkStatistics(int chunk, CalibrationStatistics statistics) {
    this.chunk = chunk;
    this.statistics = statistics;
  }

  /** Folds partials chunk 0, 1, 2, ... so the sum does not depend on partitioning. */
  static CalibrationStatistics foldInOrder(Iterable<ChunkStatistics> partials) {
    List<ChunkStatistics> sorted = new ArrayList<>();
    partials.forEach(sorted::add);
    sorted.sort(Comparator.comparingInt(partial -> partial.chunk));
    CalibrationStatistics total = sorted.get(0).statistics;
    for (int i = 1; i < sorted.size(); i++) {
      total.merge(sorted.get(i).statistics);
    }
    return total;
  }
}
