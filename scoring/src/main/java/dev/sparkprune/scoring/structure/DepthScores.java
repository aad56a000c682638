package dev.sparkprune.scoring.structure;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * Partial sums for choosing which decoder blocks to drop, over the calibration tokens:
 *
 * <ul>
 *   <li>block influence of block b (ShortGPT, Men et al. 2024): the mean over tokens of
 *       1 − cos(x_b, y_b) between the block's input and output;
 *   <li>angular distance between the inputs of blocks l and l + n (Gromov et al., "The
 *       Unreasonable Ineffectiveness of the Deeper Layers"): the mean over tokens of
 *       arccos(cos(x_l, x_{l+n})) / π.
 * </ul>
 *
 * <p>Sums are kept in double and folded with {@link #plus}; a job folds chunk partials in chunk
 * order so the result does not depend on the partitioning. The last block is never dropped, so
 * the distance of a run l..l+n−1 needs only inputs of blocks up to the last one: l + n ≤ blocks − 1.
 */
public final class DepthScores implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int blocks;
  private final int maxSpan;
  private final long tokens;
  /** [blocks] sums of 1 − cos(input, output). */
  private final double[] influenceSums;
  /** [blocks x (maxSpan + 1)] sums of arccos(cos(x_l, x_{l+n})) / π at [l * (maxSpan + 1) + n]. */
  private final double[] angularSums;

  DepthScores(int blocks, int maxSpan, long tokens, double[] influenceSums, double[] angularSums) {
    this.blocks = blocks;
    this.maxSpan = maxSpan;
    this.tokens = tokens;
    this.influenceSums = influenceSums;
    this.angularSums = angularSums;
  }

  /** No tokens seen yet. */
  public static DepthScores empty(int blocks, int maxSpan) {
    ValidationException.check(blocks >= 1 && maxSpan >= 0, "Invalid depth scores: %d blocks, span %d", blocks, maxSpan);
    return new DepthScores(blocks, maxSpan, 0, new double[blocks], new double[blocks * (maxSpan + 1)]);
  }

  public int blocks() {
    return blocks;
  }

  public int maxSpan() {
    return maxSpan;
  }

  public long tokens() {
    return tokens;
  }

  /** The sum of two partials over disjoint tokens. */
  public DepthScores plus(DepthScores other) {
    ValidationException.check(
        other.blocks == blocks && other.maxSpan == maxSpan,
        "Cannot fold depth scores of %d blocks (span %d) into %d blocks (span %d)",
        other.blocks, other.maxSpan, blocks, maxSpan);
    double[] influence = influenceSums.clone();
    double[] angular = angularSums.clone();
    for (int i = 0; i < influence.length; i++) {
      influence[i] += other.influenceSums[i];
    }
    for (int i = 0; i < angular.length; i++) {
      angular[i] += other.angularSums[i];
    }
    return new DepthScores(blocks, maxSpan, tokens + other.tokens, influence, angular);
  }

  /** Mean 1 − cos(input, output) of block b. */
  public double blockInfluence(int block) {
    return influenceSums[block] / Math.max(1, tokens);
  }

  /** Mean angular distance between the inputs of blocks l and l + n (n ≤ max span). */
  public double angularDistance(int first, int span) {
    ValidationException.check(span >= 1 && span <= maxSpan, "Invalid span %d: between 1 and %d", span, maxSpan);
    ValidationException.check(first >= 0 && first + span < blocks, "Invalid run of %d blocks from block %d", span, first);
    return angularSums[first * (maxSpan + 1) + span] / Math.max(1, tokens);
  }

  /**
   * The n blocks to drop by angular distance: the contiguous run l..l+n−1 with the smallest
   * distance between x_l and x_{l+n}, never the last block; the lowest l wins a tie.
   */
  public List<Integer> dropByAngularDistance(int count) {
    checkDropCount(count);
    ValidationException.check(count <= maxSpan, "Cannot drop %d blocks: the distances were computed for runs up to %d", count, maxSpan);
    int best = 0;
    for (int first = 1; first + count < blocks; first++) {
      if (angularDistance(first, count) < angularDistance(best, count)) {
        best = first;
      }
    }
    List<Integer> dropped = new ArrayList<>();
    for (int b = best; b < best + count; b++) {
      dropped.add(b);
    }
    return dropped;
  }

  /** The n blocks of lowest block influence, never the last one, ascending; the lower index wins a tie. */
  public List<Integer> dropByBlockInfluence(int count) {
    double[] influence = new double[blocks];
    for (int b = 0; b < blocks; b++) {
      influence[b] = blockInfluence(b);
    }
    return dropLowest(influence, count);
  }

  /** The n blocks of lowest {@code scores} (one per block), never the last one, ascending; the lower index wins a tie. */
  public List<Integer> dropLowest(double[] scores, int count) {
    checkDropCount(count);
    ValidationException.check(scores.length == blocks, "Invalid block scores: %d for %d blocks", scores.length, blocks);
    boolean[] taken = new boolean[blocks];
    for (int i = 0; i < count; i++) {
      int lowest = -1;
      for (int b = 0; b + 1 < blocks; b++) {
        if (!taken[b] && (lowest < 0 || scores[b] < scores[lowest])) {
          lowest = b;
        }
      }
      taken[lowest] = true;
    }
    List<Integer> dropped = new ArrayList<>();
    for (int b = 0; b < blocks; b++) {
      if (taken[b]) {
        dropped.add(b);
      }
    }
    return dropped;
  }

  private void checkDropCount(int count) {
    ValidationException.check(
        count >= 1 && count < blocks,
        "Cannot drop %d of %d blocks: the last block is always kept, so drop between 1 and %d",
        count, blocks, blocks - 1);
  }

  /**
   * Accumulates one chunk's sums as the calibration pass runs through the blocks in order: it
   * keeps the inputs of the last {@code maxSpan} blocks to compare with the current one.
   * Serializable: an expert-parallel shrink keeps each chunk's accumulator beside its cached
   * states between Spark stages.
   */
  public static final class Accumulator implements Serializable {
    private static final long serialVersionUID = 1L;
    private final int blocks;
    private final int maxSpan;
    private final double[] influenceSums;
    private final double[] angularSums;
    private final float[][] recentInputs;
    private long tokens = -1;
    private int width;

    public Accumulator(int blocks, int maxSpan) {
      DepthScores.empty(blocks, maxSpan);
      this.blocks = blocks;
      this.maxSpan = maxSpan;
      this.influenceSums = new double[blocks];
      this.angularSums = new double[blocks * (maxSpan + 1)];
      this.recentInputs = new float[blocks][];
    }

    /** Block b's input and output [tokens x width]; blocks must come in order 0, 1, ... */
    public void observe(int block, float[] input, float[] output, int tokenCount, int hiddenWidth) {
      if (tokens < 0) {
        tokens = tokenCount;
        width = hiddenWidth;
      }
      ValidationException.check(tokenCount == tokens && hiddenWidth == width, "Block %d has another batch shape", block);
      for (int t = 0; t < tokenCount; t++) {
        influenceSums[block] += 1 - cosine(input, t * width, output, t * width, width);
      }
      for (int span = 1; span <= maxSpan && span <= block; span++) {
        float[] earlier = recentInputs[block - span];
        ValidationException.check(earlier != null, "Block %d came before block %d", block, block - span);
        for (int t = 0; t < tokenCount; t++) {
          angularSums[(block - span) * (maxSpan + 1) + span] += angle(earlier, input, t * width, width);
        }
      }
      // Only inputs a later block can still be compared with are kept.
      recentInputs[block] = input.clone();
      if (block - maxSpan >= 0) {
        recentInputs[block - maxSpan] = null;
      }
    }

    public DepthScores result() {
      return new DepthScores(blocks, maxSpan, Math.max(0, tokens), influenceSums.clone(), angularSums.clone());
    }
  }

  /** arccos(cos(a_t, b_t)) / π for row t of two [tokens x width] arrays. */
  static double angle(float[] a, float[] b, int offset, int width) {
    double cos = Math.max(-1, Math.min(1, cosine(a, offset, b, offset, width)));
    return Math.acos(cos) / Math.PI;
  }

  /** cos between two rows, in double; 1 when either is zero (no direction to compare). */
  static double cosine(float[] a, int aOffset, float[] b, int bOffset, int width) {
    double dot = 0;
    double aa = 0;
    double bb = 0;
    for (int c = 0; c < width; c++) {
      double x = a[aOffset + c];
      double y = b[bOffset + c];
      dot += x * y;
      aa += x * x;
      bb += y * y;
    }
    return aa == 0 || bb == 0 ? 1 : dot / Math.sqrt(aa * bb);
  }
}
