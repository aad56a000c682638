package dev.sparkprune.jobs.calibration;

import java.io.Serializable;
import java.util.Objects;

/**
 * A key's partial of a {@link BlockVisitor} over a run of chunks: a node of the fixed pairwise
 * tree of {@link PairwiseFold}, covering chunks {@code [index * 2^level, (index + 1) * 2^level)}
 * (those that exist). Level 0 is one chunk's own partial.
 */
public final class ChunkPartial<P extends Serializable> implements Serializable {
  private static final long serialVersionUID = 3L;

  private final int level;
  private final int index;
  private final P value;

  public ChunkPartial(int level, int index, P value) {
    this.level = level;
    this.index = index;
    this.value = Objects.requireNonNull(value, "value is null");
  }

  /** One chunk's partial. */
  public static <P extends Serializable> ChunkPartial<P> ofChunk(int chunk, P value) {
    return new ChunkPartial<>(0, chunk, value);
  }

  public int level() {
    return level;
  }

  public int index() {
    return index;
  }

  /** The first chunk this node covers. */
  public int firstChunk() {
    return index << level;
  }

  public P value() {
    return value;
  }
}
