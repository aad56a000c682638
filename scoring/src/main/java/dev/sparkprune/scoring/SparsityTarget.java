package dev.sparkprune.scoring;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.Locale;

/**
 * What to prune: an unstructured ratio s in [0, 1), or an N:M pattern where N of every M
 * consecutive input columns of a row are pruned (the reference implementations' convention; 2:4
 * and 4:8 are both 50%).
 */
public final class SparsityTarget implements Serializable {
  private static final long serialVersionUID = 1L;

  private final double ratio;
  private final int prunedPerGroup;
  private final int groupSize;

  private SparsityTarget(double ratio, int prunedPerGroup, int groupSize) {
    this.ratio = ratio;
    this.prunedPerGroup = prunedPerGroup;
    this.groupSize = groupSize;
  }

  public static SparsityTarget unstructured(double ratio) {
    if (!(ratio >= 0 && ratio < 1)) {
      throw ValidationException.invalid("sparsity", ratio, "must be in [0, 1)");
    }
    return new SparsityTarget(ratio, 0, 0);
  }

  /** N:M: {@code pruned} of every {@code groupSize} consecutive columns. */
  public static SparsityTarget nOfM(int pruned, int groupSize) {
    if (!(pruned > 0 && groupSize > 0 && pruned < groupSize)) {
      throw ValidationException.invalid("N:M pattern", pruned + ":" + groupSize, "need 0 < N < M");
    }
    return new SparsityTarget((double) pruned / groupSize, pruned, groupSize);
  }

  /** Parses "0.5" as unstructured or "2:4" as N:M. */
  public static SparsityTarget parse(String text) {
    String trimmed = text.trim();
    try {
      int colon = trimmed.indexOf(':');
      if (colon >= 0) {
        return nOfM(Integer.parseInt(trimmed.substring(0, colon)), Integer.parseInt(trimmed.substring(colon + 1)));
      }
      return unstructured(Double.parseDouble(trimmed));
    } catch (NumberFormatException e) {
      throw ValidationException.invalid("sparsity target", "'" + text + "'", "expected a ratio like 0.5 or a pattern like 2:4");
    }
  }

  public boolean isStructured() {
    return groupSize > 0;
  }

  /** The fraction of weights pruned. */
  public double ratio() {
    return ratio;
  }

  public int prunedPerGroup() {
    return prunedPerGroup;
  }

  public int groupSize() {
    return groupSize;
  }

  /** Checks the target fits a layer with {@code inFeatures} columns. */
  public void checkFits(String layer, int inFeatures) {
    ValidationException.check(
        !isStructured() || inFeatures % groupSize == 0,
        "Cannot prune layer %s with pattern %s: M = %d does not divide in_features %d",
        layer,
        this,
        groupSize,
        inFeatures);
  }

  @Override
  public String toString() {
    return isStructured() ? prunedPerGroup + ":" + groupSize : String.format(Locale.ROOT, "%s", ratio);
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof SparsityTarget
        && ((SparsityTarget) other).ratio == ratio
        && ((SparsityTarget) other).groupSize == groupSize
        && ((SparsityTarget) other).prunedPerGroup == prunedPerGroup;
  }

  @Override
  public int hashCode() {
    return Double.hashCode(ratio) * 31 + groupSize * 7 + prunedPerGroup;
  }
}
