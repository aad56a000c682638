package dev.sparkprune.jobs.prune.output;

import dev.sparkprune.jobs.prune.plan.Placement;
import dev.sparkprune.tensorio.mask.Mask;
import dev.sparkprune.tensorio.quant.QuantizationError;
import dev.sparkprune.tensorio.quant.Requantization;
import java.io.Serializable;

/** What scoring one linear produced: its mask (for the Parquet output) and report figures. */
public final class LinearResult implements Serializable {
  private static final long serialVersionUID = 1L;

  private static final Requantization NOT_QUANTIZED = new Requantization(QuantizationError.NONE, 0, 0);

  public final int block;
  public final String linear;
  public final String tensor;
  public final int rows;
  public final int cols;
  public final long kept;
  public final double reconstructionLoss;
  public final double damping;
  public final double seconds;
  public final Placement placement;
  /** Null in summaries that travel to the driver. */
  public final Mask mask;
  /** The expert's label ("3", "shared"), or "" outside any expert. */
  public final String expert;
  /** Tokens in the statistics the linear was scored with; -1 without statistics. */
  public final long calibrationTokens;
  /** Why a routed expert was pruned with magnitude instead of its method; "" when it was not. */
  public final String fallback;
  /** How the tensor is stored (its dtype, or the quantized format, {@code ArchiveTensor.storageLabel()}). */
  public final String storage;
  /** What writing it in a quantized format cost; no blocks for a plain tensor. */
  public final Requantization requantization;

  public LinearResult(
      int block, String linear, String tensor, Mask mask, double reconstructionLoss, double damping, double seconds, Placement placement) {
    this(block, linear, tensor, mask.rows(), mask.cols(), mask.keptCount(), reconstructionLoss, damping, seconds, placement, mask,
        "", -1, "", "", NOT_QUANTIZED);
  }

  private LinearResult(
      int block, String linear, String tensor, int rows, int cols, long kept, double reconstructionLoss, double damping,
      double seconds, Placement placement, Mask mask, String expert, long calibrationTokens, String fallback, String storage,
      Requantization requantization) {
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
    this.storage = java.util.Objects.requireNonNull(storage, "storage is null");
    this.requantization = java.util.Objects.requireNonNull(requantization, "requantization is null");
  }

  /** The same result with its expert, calibration token count and fallback reason. */
  public LinearResult withExpert(String expertLabel, long tokens, String fallbackReason) {
    return new LinearResult(
        block, linear, tensor, rows, cols, kept, reconstructionLoss, damping, seconds, placement, mask, expertLabel, tokens, fallbackReason,
        storage, requantization);
  }

  /** The same result with how its tensor is stored and what writing it in that format cost. */
  public LinearResult withStorage(String storageLabel, Requantization written) {
    return new LinearResult(
        block, linear, tensor, rows, cols, kept, reconstructionLoss, damping, seconds, placement, mask, expert, calibrationTokens, fallback,
        storageLabel, written);
  }

  /** Whether the tensor was written in a quantized format (FP8 blocks, MXFP4). */
  public boolean quantized() {
    return requantization.blocks() > 0;
  }

  /** The same figures without the mask bits, for the driver. */
  public LinearResult summary() {
    return new LinearResult(
        block, linear, tensor, rows, cols, kept, reconstructionLoss, damping, seconds, placement, null, expert, calibrationTokens, fallback,
        storage, requantization);
  }

  public double sparsity() {
    return 1.0 - (double) kept / ((long) rows * cols);
  }
}
