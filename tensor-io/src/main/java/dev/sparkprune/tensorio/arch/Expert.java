package dev.sparkprune.tensorio.arch;

import java.io.Serializable;

/**
 * The expert of a mixture-of-experts block a linear belongs to: a routed expert, which sees
 * only the tokens its router sends it, or the shared expert, which sees every token. A final
 * class rather than a record: Spark's Kryo serializes plan rows that carry it.
 */
public final class Expert implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final int SHARED = -1;

  /** The routed expert's index within its block; {@link #SHARED} for the shared expert. */
  private final int index;

  private Expert(int index) {
    this.index = index;
  }

  public static Expert routed(int index) {
    if (index < 0) {
      throw new IllegalArgumentException("Invalid expert index " + index);
    }
    return new Expert(index);
  }

  public static Expert sharedExpert() {
    return new Expert(SHARED);
  }

  public boolean shared() {
    return index == SHARED;
  }

  /** The routed expert's index within its block. */
  public int index() {
    if (shared()) {
      throw new IllegalStateException("The shared expert has no index");
    }
    return index;
  }

  /** "3" for routed expert 3, "shared" for the shared expert. */
  public String label() {
    return shared() ? "shared" : Integer.toString(index);
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof Expert && ((Expert) other).index == index;
  }

  @Override
  public int hashCode() {
    return Integer.hashCode(index);
  }

  @Override
  public String toString() {
    return "expert " + label();
  }
}
