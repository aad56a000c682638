package dev.sparkprune.tensorio.arch;

import java.io.Serializable;

/**
 * The expert of a mixture-of-experts block a linear belongs to: a routed expert, which sees
 * only the tokens its router sends it, or the shared expert, which sees every token.
 *
 * @param index the routed expert's index within its block; -1 for the shared expert
 */
public record Expert(int index, boolean shared) implements Serializable {
  public Expert {
    if (shared ? index != -1 : index < 0) {
      throw new IllegalArgumentException("Invalid expert index " + index + (shared ? " for the shared expert" : ""));
    }
  }

  public static Expert routed(int index) {
    return new Expert(index, false);
  }

  public static Expert sharedExpert() {
    return new Expert(-1, true);
  }

  /** "3" for routed expert 3, "shared" for the shared expert. */
  public String label() {
    return shared ? "shared" : Integer.toString(index);
  }
}
