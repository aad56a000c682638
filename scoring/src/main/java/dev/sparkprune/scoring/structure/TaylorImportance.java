package dev.sparkprune.scoring.structure;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Per block, the first-order Taylor importance ({@link TaylorScores}) of each MLP intermediate
 * channel (dense blocks) and each KV group, from the dense model's mean loss gradient: what
 * {@code --width-metric taylor} ranks by. Vectors of channel or group length, never weight-sized.
 */
public record TaylorImportance(Map<Integer, double[]> mlpChannels, Map<Integer, double[]> kvGroups) implements Serializable {
  /** No Taylor scores: the decision uses another width metric. */
  public static final TaylorImportance NONE = new TaylorImportance(Map.of(), Map.of());

  public TaylorImportance {
    mlpChannels = Map.copyOf(Objects.requireNonNull(mlpChannels, "mlpChannels is null"));
    kvGroups = Map.copyOf(Objects.requireNonNull(kvGroups, "kvGroups is null"));
  }

  /** Scores of several blocks gathered into one value. */
  public static TaylorImportance of(Iterable<Block> blocks) {
    Map<Integer, double[]> mlp = new LinkedHashMap<>();
    Map<Integer, double[]> kv = new LinkedHashMap<>();
    for (Block block : blocks) {
      if (block.mlpChannels().length > 0) {
        mlp.put(block.block(), block.mlpChannels());
      }
      kv.put(block.block(), block.kvGroups());
    }
    return new TaylorImportance(mlp, kv);
  }

  /** One block's scores; {@code mlpChannels} empty for a block without a dense MLP. */
  public record Block(int block, double[] mlpChannels, double[] kvGroups) implements Serializable {}
}
