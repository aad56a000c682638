package dev.sparkprune.tensorio.tokenizer;

import java.util.Arrays;
import java.util.PriorityQueue;

/**
 * The BPE merge loop of Hugging Face tokenizers ({@code Word::merge_all}): repeatedly merge the
 * adjacent pair with the lowest merge rank, the leftmost first on equal ranks. Symbols form a
 * linked list and candidates a priority queue, so a word of n symbols costs O(n log n). Merges
 * live in an open-addressing table keyed by the (left, right) id pair: no boxing on the hot path.
 */
final class BpeMerger {
  private static final long EMPTY = -1L;

  private final long[] keys;
  private final int[] ranks;
  private final int[] results;
  private final int mask;
  private int size;

  BpeMerger(int capacity) {
    int slots = Integer.highestOneBit(Math.max(16, capacity * 2 - 1)) << 1;
    keys = new long[slots];
    Arrays.fill(keys, EMPTY);
    ranks = new int[slots];
    results = new int[slots];
    mask = slots - 1;
  }

  static long pair(int left, int right) {
    return ((long) left << 32) | (right & 0xFFFFFFFFL);
  }

  /** Adds a merge unless the pair already has one (the first, lowest rank wins, as in HF). */
  void add(int left, int right, int rank, int result) {
    long key = pair(left, right);
    int slot = slot(key);
    if (keys[slot] == EMPTY) {
      keys[slot] = key;
      ranks[slot] = rank;
      results[slot] = result;
      size++;
    }
  }

  int size() {
    return size;
  }

  private int slot(long key) {
    int slot = (int) (mix(key) & mask);
    while (keys[slot] != EMPTY && keys[slot] != key) {
      slot = (slot + 1) & mask;
    }
    return slot;
  }

  private static long mix(long key) {
    long h = key * 0x9E3779B97F4A7C15L;
    return h ^ (h >>> 29);
  }

  /** Merges {@code ids} and returns the merged ids. */
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
    // Candidates packed as rank << 32 | position: the queue orders by rank, then leftmost.
    PriorityQueue<Long> queue = new PriorityQueue<>();
    for (int i = 0; i + 1 < n; i++) {
      offer(queue, i, symbol[i], symbol[i + 1]);
    }
    while (!queue.isEmpty()) {
      long candidate = queue.poll();
      int left = (int) candidate;
      int right = alive[left] ? next[left] : -1;
      if (right < 0) {
        continue;
      }
      int slot = slot(pair(symbol[left], symbol[right]));
      // Stale when the pair at this position changed since it was queued.
      if (keys[slot] == EMPTY || ranks[slot] != (int) (candidate >>> 32)) {
        continue;
      }
      symbol[left] = results[slot];
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
    int count = 0;
    for (int i = 0; i >= 0; i = next[i]) {
      out[count++] = symbol[i];
    }
    return Arrays.copyOf(out, count);
  }

  private void offer(PriorityQueue<Long> queue, int position, int left, int right) {
    int slot = slot(pair(left, right));
    if (keys[slot] != EMPTY) {
      queue.add(((long) ranks[slot] << 32) | position);
    }
  }
}
