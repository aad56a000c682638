package dev.sparkprune.jobs.prune;

import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import java.io.Serializable;

/**
 * One row of the plan, from headers only: which linear, where its bytes are, and the statistics
 * key it shares with the linears that read the same input.
 */
final class PlannedLinear implements Serializable {
  private static final long serialVersionUID = 1L;

  final Linear linear;
  final String shard;
  final long fileBegin;
  final long fileEnd;
  final DType dtype;

  PlannedLinear(Linear linear, ArchiveTensor tensor) {
    this.linear = linear;
    this.shard = tensor.shard();
    this.fileBegin = tensor.fileBegin();
    this.fileEnd = tensor.fileEnd();
    this.dtype = tensor.dtype();
  }

  int block() {
    return linear.block();
  }

  String tensorName() {
    return linear.tensorName();
  }

  /** Linears of one block reading the same input share statistics: "block/input_group". */
  String statisticsKey() {
    return statisticsKey(linear.block(), linear.inputGroup());
  }

  static String statisticsKey(int block, String inputGroup) {
    return block + "/" + inputGroup;
  }
}
