package dev.sparkprune.scoring.repair;

import java.io.Serializable;
import java.util.List;

/**
 * A candidate's size and quality: parameters of the shrunk archive, the blocks its decision
 * drops, and the mean next-token NLL on the held-out calibration windows through the repaired
 * and through the unrepaired shrunk model (NaN for a candidate over the budget, never scored).
 */
public record CandidateScore(
    ShrinkCandidate candidate, long parameters, List<Integer> droppedBlocks, double heldOutNll, double heldOutNllUnrepaired)
    implements Serializable {
  public CandidateScore {
    droppedBlocks = List.copyOf(droppedBlocks);
  }
}
