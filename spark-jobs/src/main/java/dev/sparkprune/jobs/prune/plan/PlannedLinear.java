package dev.sparkprune.jobs.prune.plan;

import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.quant.Quantization;
import java.io.Serializable;

/**
 * One row of the plan, from headers only: which linear, where its bytes are, how it is pruned
 * (method and target, uniform or from an allocation or a rule), and the statistics key it
 * shares with the linears that read the same input.
 */
public final class PlannedLinear implements Serializable {
  private static final long serialVersionUID = 1L;

  public final Linear linear;
  /** The logical tensor, with its stored components: what tasks read. */
  final ArchiveTensor tensor;
  final String shard;
  final long fileBegin;
  final long fileEnd;
  public final DType dtype;
  /** How the archive's FP8 block scales are written when a pruned weight is re-quantized. */
  public final Quantization.ScaleFormat scaleFormat;
  public final PruningMethod method;
  public final SparsityTarget target;

  /** {@code quantization}: the archive's ({@link dev.sparkprune.tensorio.archive.ModelArchive#quantization()}). */
  public PlannedLinear(Linear linear, ArchiveTensor tensor, Quantization quantization, PruningMethod method, SparsityTarget target) {
    this(linear, tensor, tensor.shard(), tensor.fileBegin(), tensor.fileEnd(), tensor.dtype(), quantization.scaleFormat(), method, target);
  }

  private PlannedLinear(
      Linear linear, ArchiveTensor tensor, String shard, long fileBegin, long fileEnd, DType dtype, Quantization.ScaleFormat scaleFormat,
      PruningMethod method, SparsityTarget target) {
    this.linear = linear;
    this.tensor = tensor;
    this.shard = shard;
    this.fileBegin = fileBegin;
    this.fileEnd = fileEnd;
    this.dtype = dtype;
    this.scaleFormat = scaleFormat;
    this.method = method;
    this.target = target;
    target.checkFits(linear.tensorName(), (int) linear.inFeatures());
  }

  public PlannedLinear with(PruningMethod newMethod, SparsityTarget newTarget) {
    return new PlannedLinear(linear, tensor, shard, fileBegin, fileEnd, dtype, scaleFormat, newMethod, newTarget);
  }

  /** The logical tensor, with its stored components (a quantized weight's scales). */
  public ArchiveTensor tensor() {
    return tensor;
  }

  public int block() {
    return linear.block();
  }

  public String tensorName() {
    return linear.tensorName();
  }

  /** Linears of one block reading the same input share statistics: "block/input_group". */
  public String statisticsKey() {
    return dev.sparkprune.jobs.calibration.LinearInputStatistics.key(linear.block(), linear.inputGroup());
  }

  /** The linear's weights in [out, in], read with positioned reads from the shards of its components. */
  public float[] read(dev.sparkprune.jobs.spark.JobContext context) throws java.io.IOException {
    return context.readLinear(tensor, linear);
  }
}
