package dev.sparkprune.jobs.prune;

import dev.sparkprune.tensorio.mask.Mask;
import java.io.Serializable;

/** What scoring one linear produced: its mask (for the Parquet output) and report figures. */
final class LinearResult implements Serializable {
  private static final long serialVersionUID = 1L;

  final int block;
  final String linear;
  final String tensor;
  final int rows;
  final int cols;
  final long kept;
  final double reconstructionLoss;
  final double damping;
  final double seconds;
  final Placement placement;
  /** Null in summaries that travel to the driver. */
  final Mask mask;
  /** The expert's label ("3", "shared"), or "" outside any expert. */
  final String expert;
  /** Tokens in the statistics the linear was scored with; -1 without statistics. */
  final long calibrationTokens;
  /** Why a routed expert was pruned with magnitude instead of its method; "" when it was not. */
  final String fallback;

  LinearResult(
      int block, String linear, String tensor, Mask mask, double reconstructionLoss, double damping, double seconds, Placement placement) {
    this(block, linear, tensor, mask.rows(), mask.cols(), mask.keptCount(), reconstructionLoss, damping, seconds, placement, mask,
        "", -1, "");
  }

  private LinearResult(
      int block, String linear, String tensor, int rows, int cols, long kept, double reconstructionLoss, double damping,
      double seconds, Placement placement, Mask mask, String expert, long calibrationTokens, String fallback) {
    this.block = block;
    this.linear = linear;
    this.tensor = tensor;
    this.rows = rows;
    this.cols = cols;
    this.kept = kept;
    this.reconstructionLoss = reconstructionLoss;
    this.damping = damping;
    this.seconds = seconds;
    this.placement = placement;
    this.mask = mask;
    this.expert = java.util.Objects.requireNonNull(expert, "expert is null");
    this.calibrationTokens = calibrationTokens;
    this.fallback = java.util.Objects.requireNonNull(fallback, "fallback is null");
  }

  /** The same result with its expert, calibration token count and fallback reason. */
  LinearResult withExpert(String expertLabel, long tokens, String fallbackReason) {
    return new LinearResult(
        block, linear, tensor, rows, cols, kept, reconstructionLoss, damping, seconds, placement, mask, expertLabel, tokens, fallbackReason);
  }

  /** The same figures without the mask bits, for the driver. */
  LinearResult summary() {
    return new LinearResult(
        block, linear, tensor, rows, cols, kept, reconstructionLoss, damping, seconds, placement, null, expert, calibrationTokens, fallback);
  }

  double sparsity() {
    return 1.0 - (double) kept / ((long) rows * cols);
  }
}
