package dev.sparkprune.scoring.structure;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/** One chunk's depth scores and per-block summaries; chunks fold with {@link #plus} in chunk order. */
public record ChunkSummary(int chunk, DepthScores depth, List<BlockSummary> blocks) implements Serializable {
  public ChunkSummary {
    Objects.requireNonNull(depth, "depth is null");
    blocks = List.copyOf(blocks);
  }

  public ChunkSummary plus(ChunkSummary later) {
    ValidationException.check(later.blocks.size() == blocks.size(), "Cannot fold summaries of %d and %d blocks", blocks.size(), later.blocks.size());
    List<BlockSummary> folded = new ArrayList<>();
    for (int b = 0; b < blocks.size(); b++) {
      folded.add(blocks.get(b).plus(later.blocks.get(b)));
    }
    return new ChunkSummary(chunk, depth.plus(later.depth), folded);
  }

  /** Folds summaries in ascending chunk order, whatever order they come in. */
  public static ChunkSummary foldInOrder(List<ChunkSummary> summaries) {
    ValidationException.check(!summaries.isEmpty(), "Cannot fold an empty list of chunk summaries");
    List<ChunkSummary> sorted = new ArrayList<>(summaries);
    sorted.sort((a, b) -> Integer.compare(a.chunk, b.chunk));
    ChunkSummary total = sorted.get(0);
    for (int i = 1; i < sorted.size(); i++) {
      total = total.plus(sorted.get(i));
    }
    return total;
  }
}
