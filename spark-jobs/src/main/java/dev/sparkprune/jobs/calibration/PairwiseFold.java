package dev.sparkprune.jobs.calibration;

import java.io.Serializable;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.function.BinaryOperator;

/**
 * Folds a key's chunk partials over one fixed pairwise tree of the chunks 0 .. n-1: a node of
 * level l and index i is {@code merge(node(l-1, 2i), node(l-1, 2i+1))}, or its left child
 * alone where the right one covers no chunk; the root has level ceil(log2 n). The tree depends
 * only on n (fixed by --nsamples), so every place may fold what it holds: a task folds the
 * contiguous chunks of its partition as they finish and ships only the complete subtrees
 * (at most 2 log2 n partials, one when partitions align with the tree, instead of one per
 * chunk), and the reduce side folds those in order of their first chunk. Each internal node is
 * merged from the same two values whatever the partitioning, so results are bit-identical on
 * any partitioning, and a task or reducer holds at most about log2 n + 2 partials at once
 * (what bounds X^T X in memory: one per chunk would be 16 Hessians).
 *
 * <p>Nodes must be added in increasing order of their first chunk, without overlap. Any
 * per-chunk partial folds this way: a {@link BlockVisitor}'s, or the gradient pass's per-weight
 * statistics (with their {@code plus}).
 */
public final class PairwiseFold<P extends Serializable> {
  private final int chunks;
  private final int rootLevel;
  /** merge(earlier, later): two adjacent runs of chunks, the earlier first. */
  private final BinaryOperator<P> merge;
  private final Deque<ChunkPartial<P>> stack = new ArrayDeque<>();
  private int nextChunk;

  public PairwiseFold(int chunks, BlockVisitor<P> visitor) {
    this(chunks, visitor::merge);
  }

  /** A fold whose partials merge with {@code merge(earlier, later)}. */
  public PairwiseFold(int chunks, BinaryOperator<P> merge) {
    if (chunks < 1) {
      throw new IllegalArgumentException("Cannot fold " + chunks + " chunks");
    }
    this.chunks = chunks;
    this.rootLevel = 32 - Integer.numberOfLeadingZeros(chunks - 1);
    this.merge = java.util.Objects.requireNonNull(merge, "merge is null");
  }

  /** Adds one chunk's own partial. */
  public void addChunk(int chunk, P value) {
    add(ChunkPartial.ofChunk(chunk, value));
  }

  /** Adds a node: one chunk's partial or a subtree another place folded. */
  public void add(ChunkPartial<P> node) {
    if (node.firstChunk() < nextChunk || node.firstChunk() >= chunks || node.level() > rootLevel) {
      throw new IllegalStateException(String.format(
          "Cannot fold node (level %d, index %d) of %d chunks after chunk %d", node.level(), node.index(), chunks, nextChunk - 1));
    }
    nextChunk = Math.min(chunks, (node.index() + 1) << node.level());
    stack.addLast(node);
    while (true) {
      ChunkPartial<P> top = stack.peekLast();
      if (top.level() < rootLevel && top.index() % 2 == 0 && ((long) top.index() + 1 << top.level()) >= chunks) {
        // A left child whose right sibling covers no chunk: the parent is the child itself.
        stack.pollLast();
        stack.addLast(new ChunkPartial<>(top.level() + 1, top.index() / 2, top.value()));
        continue;
      }
      if (stack.size() >= 2) {
        ChunkPartial<P> right = stack.pollLast();
        ChunkPartial<P> left = stack.peekLast();
        if (left.level() == right.level() && left.index() % 2 == 0 && left.index() + 1 == right.index()) {
          stack.pollLast();
          stack.addLast(new ChunkPartial<>(left.level() + 1, left.index() / 2, merge.apply(left.value(), right.value())));
          continue;
        }
        stack.addLast(right);
      }
      return;
    }
  }

  /** The complete subtrees folded so far, in chunk order: what a task ships. */
  public List<ChunkPartial<P>> nodes() {
    return new ArrayList<>(stack);
  }

  /** The fold of all chunks; every chunk must have been added. */
  public P result() {
    ChunkPartial<P> root = stack.peekLast();
    if (stack.size() != 1 || root.level() != rootLevel) {
      throw new IllegalStateException("Cannot fold " + chunks + " chunks: " + stack.size() + " subtrees missing a chunk");
    }
    return root.value();
  }
}
