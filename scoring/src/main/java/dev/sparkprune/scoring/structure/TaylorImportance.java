package dev.sparkprune.scoring.structure;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * First-order Taylor importance from the dense model's loss gradient: per block, that of each
 * MLP intermediate channel (dense blocks) and each KV group ({@link TaylorScores}), what
 * {@code --width-metric taylor} ranks by; and each block's removal importance |mean_s dL/dOutput
 * . (input - output)|, what {@code --layer-metric taylor} ranks by. Vectors of channel, group or
 * block length, never weight-sized.
 *
 * @param blockRemoval per block, empty when the width scores alone were computed
 */
public record TaylorImportance(Map<Integer, double[]> mlpChannels, Map<Integer, double[]> kvGroups, double[] blockRemoval)
    implements Serializable {
  /** No Taylor scores: the decision uses other metrics. */
  public static final TaylorImportance NONE = new TaylorImportance(Map.of(), Map.of(), new double[0]);

  public TaylorImportance {
    mlpChannels = Map.copyOf(Objects.requireNonNull(mlpChannels, "mlpChannels is null"));
    kvGroups = Map.copyOf(Objects.requireNonNull(kvGroups, "kvGroups is null"));
    blockRemoval = blockRemoval.clone();
  }

  @Override
  public double[] blockRemoval() {
    return blockRemoval.clone();
  }

  /** The same width scores with each block's removal importance. */
  public TaylorImportance withBlockRemoval(double[] values) {
    return new TaylorImportance(mlpChannels, kvGroups, values);
  }

  /** Width scores of several blocks gathered into one value. */
  public static TaylorImportance of(Iterable<Block> blocks) {
    Map<Integer, double[]> mlp = new LinkedHashMap<>();
    Map<Integer, double[]> kv = new LinkedHashMap<>();
    for (Block block : blocks) {
      if (block.mlpChannels().length > 0) {
        mlp.put(block.block(), block.mlpChannels());
      }
      kv.put(block.block(), block.kvGroups());
    }
    return new TaylorImportance(mlp, kv, new double[0]);
  }

  /** One block's scores; {@code mlpChannels} empty for a block without a dense MLP. */
  public record Block(int block, double[] mlpChannels, double[] kvGroups) implements Serializable {}
}
