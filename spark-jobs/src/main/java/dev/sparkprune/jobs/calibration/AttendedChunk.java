package dev.sparkprune.jobs.calibration;

import dev.sparkprune.scoring.model.HiddenStates;
import java.io.Serializable;
import java.util.List;
import java.util.Objects;
import scala.Tuple2;

/**
 * A chunk after stage 1 of an expert-parallel block: its states at the block's input, the
 * residual stream after attention, and the router's [tokens x k] choices and weights, cached on
 * the executors until stage 3 combines the experts' outputs. The last chunk of a partition
 * carries the partition's partials of the attention's statistics.
 */
final class AttendedChunk<P extends Serializable> implements Serializable {
  private static final long serialVersionUID = 1L;

  final SampleChunk input;
  final HiddenStates residual;
  final int[] chosen;
  final float[] weights;
  final List<Tuple2<String, ChunkPartial<P>>> partials;

  AttendedChunk(SampleChunk input, HiddenStates residual, int[] chosen, float[] weights, List<Tuple2<String, ChunkPartial<P>>> partials) {
    this.input = Objects.requireNonNull(input, "input is null");
    this.residual = Objects.requireNonNull(residual, "residual is null");
    this.chosen = Objects.requireNonNull(chosen, "chosen is null");
    this.weights = Objects.requireNonNull(weights, "weights is null");
    this.partials = List.copyOf(partials);
  }

  AttendedChunk<P> withPartials(List<Tuple2<String, ChunkPartial<P>>> nodes) {
    return new AttendedChunk<>(input, residual, chosen, weights, nodes);
  }
}
