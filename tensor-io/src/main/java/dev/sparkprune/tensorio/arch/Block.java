package dev.sparkprune.tensorio.arch;

import java.io.Serializable;
import java.util.List;

/** One decoder block and its prunable linears, in forward order. */
public final class Block implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int index;
  private final List<Linear> linears;

  public Block(int index, List<Linear> linears) {
    this.index = index;
    this.linears = List.copyOf(linears);
  }

  public int index() {
    return index;
  }

  public List<Linear> linears() {
    return linears;
  }

  /** The number of routed experts in this block; 0 for a dense block. */
  public int routedExperts() {
    return (int) linears.stream().filter(Linear::isRoutedExpert).mapToInt(linear -> linear.expert().get().index()).distinct().count();
  }

  /** True when the block has a shared expert (Qwen2-MoE). */
  public boolean hasSharedExpert() {
    return linears.stream().anyMatch(linear -> linear.expert().map(Expert::shared).orElse(false));
  }
}
