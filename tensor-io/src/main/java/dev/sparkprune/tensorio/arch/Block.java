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
}
