package dev.sparkprune.jobs.prune.calibration;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;

/** One chunk's partial for one key of a {@link BlockVisitor}; folded in chunk order. */
public final class ChunkPartial<P extends Serializable> implements Serializable {
  private static final long serialVersionUID = 2L;

  private final int chunk;
  private final P value;

  public ChunkPartial(int chunk, P value) {
    this.chunk = chunk;
    this.value = Objects.requireNonNull(value, "value is null");
  }

  public int chunk() {
    return chunk;
  }

  public P value() {
    return value;
  }

  /** Folds partials chunk 0, 1, 2, ... so the result does not depend on partitioning. */
  public static <P extends Serializable> P foldInOrder(Iterable<ChunkPartial<P>> partials, BlockVisitor<P> visitor) {
    List<ChunkPartial<P>> sorted = new ArrayList<>();
    partials.forEach(sorted::add);
    sorted.sort(Comparator.comparingInt(ChunkPartial::chunk));
    P total = sorted.get(0).value;
    for (int i = 1; i < sorted.size(); i++) {
      total = visitor.merge(total, sorted.get(i).value);
    }
    return total;
  }
}
