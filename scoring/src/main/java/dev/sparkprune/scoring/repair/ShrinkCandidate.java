package dev.sparkprune.scoring.repair;

import dev.sparkprune.scoring.structure.KeepCounts;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;

/**
 * One point of the size-budget search: how many blocks to drop and which fractions of MLP
 * channels, KV groups and routed experts to keep (1 keeps all of a structure). How each is
 * chosen (metrics) comes from the request's {@link ShrinkSettings}.
 */
public record ShrinkCandidate(int dropBlocks, double mlpKeep, double headsKeep, double expertsKeep) implements Serializable {
  public ShrinkCandidate {
    ValidationException.check(dropBlocks >= 0, "Invalid candidate: drop %d blocks", dropBlocks);
    KeepCounts.checkFraction("MLP keep fraction", mlpKeep);
    KeepCounts.checkFraction("heads keep fraction", headsKeep);
    KeepCounts.checkFraction("experts keep fraction", expertsKeep);
  }

  /** The request's metrics with this candidate's amounts. */
  public ShrinkSettings settings(ShrinkSettings metrics) {
    return new ShrinkSettings(
        dropBlocks, metrics.layerMetric(), mlpKeep, headsKeep, metrics.widthMetric(), expertsKeep, metrics.expertMetric());
  }

  /** Cuts along at most one axis (what the search must do at least as well as). */
  public boolean isSingleAxis() {
    int axes = (dropBlocks > 0 ? 1 : 0) + (mlpKeep < 1 ? 1 : 0) + (headsKeep < 1 ? 1 : 0) + (expertsKeep < 1 ? 1 : 0);
    return axes <= 1;
  }

  @Override
  public String toString() {
    return String.format(java.util.Locale.ROOT, "drop %d, mlp %.4g, heads %.4g, experts %.4g", dropBlocks, mlpKeep, headsKeep, expertsKeep);
  }
}
