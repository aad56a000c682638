package dev.sparkprune.jobs.calibration;

import dev.sparkprune.scoring.backend.ComputeBackend;
import java.util.Map;

/** The visitor of a step that only moves the states through a block: it collects nothing. */
final class AdvanceOnly implements BlockVisitor<Integer> {
  private static final long serialVersionUID = 1L;

  @Override
  public ChunkVisit<Integer> start(int block, int chunk, ComputeBackend backend) {
    return (input, output) -> Map.of();
  }

  @Override
  public Integer merge(Integer earlier, Integer later) {
    return earlier + later;
  }

  @Override
  public boolean foldOnDriver() {
    return true;
  }
}
