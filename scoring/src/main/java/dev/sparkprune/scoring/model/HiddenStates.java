package dev.sparkprune.scoring.model;

import java.io.Serializable;

/**
 * Activations of a batch of equal-length sequences: [sequences x length x width], row-major
 * float. Token t of sequence s is row {@code s * length + t}.
 */
public final class HiddenStates implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int sequences;
  private final int length;
  private final int width;
  private final float[] values;

  public HiddenStates(int sequences, int length, int width, float[] values) {
    if (values.length != (long) sequences * length * width) {
      throw new IllegalArgumentException(
          "Invalid hidden states: " + values.length + " values for " + sequences + " x " + length + " x " + width);
    }
    this.sequences = sequences;
    this.length = length;
    this.width = width;
    this.values = values;
  }

  public int sequences() {
    return sequences;
  }

  public int length() {
    return length;
  }

  public int width() {
    return width;
  }

  public int tokens() {
    return sequences * length;
  }

  /** The backing array, [tokens x width]. */
  public float[] values() {
    return values;
  }

  /** The index of the first value that is NaN or infinite, or -1 when all are finite. */
  public int firstNonFinite() {
    for (int i = 0; i < values.length; i++) {
      if (!Float.isFinite(values[i])) {
        return i;
      }
    }
    return -1;
  }

  /** The largest finite magnitude among the values (0 for none). */
  public float largestMagnitude() {
    float largest = 0;
    for (float value : values) {
      if (Float.isFinite(value)) {
        largest = Math.max(largest, Math.abs(value));
      }
    }
    return largest;
  }

  /** Sequences {@code [first, first + count)} as their own batch (a copy). */
  public HiddenStates slice(int first, int count) {
    float[] part = new float[count * length * width];
    System.arraycopy(values, first * length * width, part, 0, part.length);
    return new HiddenStates(count, length, width, part);
  }
}
