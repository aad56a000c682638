package dev.sparkprune.tensorio.tokenizer;

import java.util.Arrays;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * The BPE merge loop of Hugging Face tokenizers ({@code Word::merge_all}): repeatedly merge the
 * adjacent pair with the lowest merge rank, the leftmost first on equal ranks. Symbols form a
 * linked list and candidates a priority queue, so a word of n symbols costs O(n log n): with no
 * pre-tokenizer (SentencePiece-style tokenizers) a whole document is one word.
 */
final class BpeMerger {
  /** Rank and result of merging a (left, right) pair of ids. */
  static final class Merge {
    final int rank;
    final int result;

    Merge(int rank, int result) {
      this.rank = rank;
      this.result = result;
    }
  }

  private final Map<Long, Merge> merges;

  BpeMerger(Map<Long, Merge> merges) {
    this.merges = merges;
  }

  static long pair(int left, int right) {
    return ((long) left << 32) | (right & 0xFFFFFFFFL);
  }

  /** Merges {@code ids} in place order and returns the merged ids. */
  int[] merge(int[] ids) {
    int n = ids.length;
    if (n < 2) {
      return ids.clone();
    }
    int[] symbol = ids.clone();
    int[] next = new int[n];
    int[] previous = new int[n];
    boolean[] alive = new boolean[n];
    for (int i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      previous[i] = i - 1;
      alive[i] = true;
    }
    // Candidates: {rank, position, leftId, rightId}; stale ones are skipped when popped.
    PriorityQueue<int[]> queue = new PriorityQueue<>((a, b) -> a[0] != b[0] ? Integer.compare(a[0], b[0]) : Integer.compare(a[1], b[1]));
    for (int i = 0; i + 1 < n; i++) {
      offer(queue, i, symbol[i], symbol[i + 1]);
    }
    while (!queue.isEmpty()) {
      int[] candidate = queue.poll();
      int left = candidate[1];
      int right = alive[left] ? next[left] : -1;
      if (right < 0 || symbol[left] != candidate[2] || symbol[right] != candidate[3]) {
        continue;
      }
      symbol[left] = merges.get(pair(candidate[2], candidate[3])).result;
      alive[right] = false;
      next[left] = next[right];
      if (next[right] >= 0) {
        previous[next[right]] = left;
      }
      if (previous[left] >= 0) {
        offer(queue, previous[left], symbol[previous[left]], symbol[left]);
      }
      if (next[left] >= 0) {
        offer(queue, left, symbol[left], symbol[next[left]]);
      }
    }
    int[] out = new int[n];
    int size = 0;
    for (int i = 0; i >= 0; i = next[i]) {
      out[size++] = symbol[i];
    }
    return Arrays.copyOf(out, size);
  }

  private void offer(PriorityQueue<int[]> queue, int position, int left, int right) {
    Merge merge = merges.get(pair(left, right));
    if (merge != null) {
      queue.add(new int[] {merge.rank, position, left, right});
    }
  }
}
