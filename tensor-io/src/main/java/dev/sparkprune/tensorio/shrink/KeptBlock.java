package dev.sparkprune.tensorio.shrink;

import java.io.Serializable;
import java.util.Arrays;

/**
 * One block a shrunk model keeps: its index in the source model and, ascending, the MLP
 * intermediate channels, KV groups and routed experts it keeps (all of them when not shrunk;
 * experts is empty for a dense block).
 */
public final class KeptBlock implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int source;
  private final int[] mlpChannels;
  private final int[] kvGroups;
  private final int[] experts;

  public KeptBlock(int source, int[] mlpChannels, int[] kvGroups, int[] experts) {
    this.source = source;
    this.mlpChannels = mlpChannels.clone();
    this.kvGroups = kvGroups.clone();
    this.experts = experts.clone();
  }

  public int source() {
    return source;
  }

  public int[] mlpChannels() {
    return mlpChannels.clone();
  }

  public int[] kvGroups() {
    return kvGroups.clone();
  }

  public int[] experts() {
    return experts.clone();
  }

  /** The new index of source expert e, or -1 when it is removed. */
  int expertIndex(int expert) {
    int index = Arrays.binarySearch(experts, expert);
    return index >= 0 ? index : -1;
  }

  @Override
  public String toString() {
    return "block " + source + ": " + mlpChannels.length + " MLP channels, " + kvGroups.length + " KV groups, " + experts.length + " experts";
  }
}
