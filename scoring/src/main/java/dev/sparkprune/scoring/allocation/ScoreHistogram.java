package dev.sparkprune.scoring.allocation;

import java.io.Serializable;
import java.util.Arrays;

/**
 * A sparse histogram of non-negative float scores over 16 bits of their order-preserving key:
 * the high 16 bits (coarse round), or the low 16 bits of the scores inside one high bucket
 * (fine round). Only non-empty buckets are kept, so a layer's histogram is a few KB.
 */
public final class ScoreHistogram implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int[] buckets;
  /** cumulative[i] = scores in buckets[0..i]. */
  private final long[] cumulative;

  private ScoreHistogram(int[] buckets, long[] cumulative) {
    this.buckets = buckets;
    this.cumulative = cumulative;
  }

  /** Order-preserving key of a non-negative float (as unsigned; +0 is the smallest). */
  public static int key(float score) {
    return Float.floatToIntBits(score + 0f);
  }

  /** Histogram of {@code key >>> 16} over all scores. */
  public static ScoreHistogram coarse(float[] scores) {
    long[] dense = new long[1 << 16];
    for (float score : scores) {
      dense[key(score) >>> 16]++;
    }
    return sparse(dense);
  }

  /** Histogram of {@code key & 0xFFFF} over the scores whose high 16 bits equal {@code high}. */
  public static ScoreHistogram fine(float[] scores, int high) {
    long[] dense = new long[1 << 16];
    for (float score : scores) {
      int key = key(score);
      if (key >>> 16 == high) {
        dense[key & 0xFFFF]++;
      }
    }
    return sparse(dense);
  }

  private static ScoreHistogram sparse(long[] dense) {
    int size = 0;
    for (long count : dense) {
      size += count > 0 ? 1 : 0;
    }
    int[] buckets = new int[size];
    long[] cumulative = new long[size];
    int i = 0;
    long total = 0;
    for (int bucket = 0; bucket < dense.length; bucket++) {
      if (dense[bucket] > 0) {
        total += dense[bucket];
        buckets[i] = bucket;
        cumulative[i++] = total;
      }
    }
    return new ScoreHistogram(buckets, cumulative);
  }

  /** Number of scores in buckets {@code <= bucket}. */
  public long countAtOrBelow(int bucket) {
    int position = Arrays.binarySearch(buckets, bucket);
    int end = position >= 0 ? position + 1 : -position - 1;
    return end == 0 ? 0 : cumulative[end - 1];
  }

  public int[] buckets() {
    return buckets.clone();
  }

  /** Serialized size in bytes, for the report of what reaches the driver. */
  public long bytes() {
    return 12L * buckets.length;
  }
}
