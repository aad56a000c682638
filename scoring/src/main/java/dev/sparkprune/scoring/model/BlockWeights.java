package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.ValidationException;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;

/**
 * The tensors of one decoder block as float arrays keyed by tensor name, linears in [out, in]
 * orientation. {@link #withTensor} swaps in pruned weights, so the next block calibrates on the
 * pruned model's activations.
 */
public final class BlockWeights {
  private final int block;
  private final Map<String, float[]> tensors;

  public BlockWeights(int block, Map<String, float[]> tensors) {
    this.block = block;
    this.tensors = Collections.unmodifiableMap(new HashMap<>(tensors));
  }

  public int block() {
    return block;
  }

  public float[] tensor(String name) {
    float[] values = tensors.get(name);
    ValidationException.check(values != null, "Block %d has no tensor '%s'", block, name);
    return values;
  }

  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  /** A copy with one tensor replaced; the length must not change. */
  public BlockWeights withTensor(String name, float[] values) {
    ValidationException.check(
        tensor(name).length == values.length,
        "Cannot replace tensor '%s': %d values instead of %d",
        name,
        values.length,
        tensor(name).length);
    Map<String, float[]> copy = new HashMap<>(tensors);
    copy.put(name, values);
    return new BlockWeights(block, copy);
  }

  /** The tensor holding the largest finite magnitude, with that magnitude; empty without tensors. */
  public java.util.Optional<Map.Entry<String, Float>> largestMagnitude() {
    Map.Entry<String, Float> largest = null;
    for (Map.Entry<String, float[]> tensor : new java.util.TreeMap<>(tensors).entrySet()) {
      float magnitude = 0;
      for (float value : tensor.getValue()) {
        if (Float.isFinite(value)) {
          magnitude = Math.max(magnitude, Math.abs(value));
        }
      }
      if (largest == null || magnitude > largest.getValue()) {
        largest = Map.entry(tensor.getKey(), magnitude);
      }
    }
    return java.util.Optional.ofNullable(largest);
  }

  public long bytes() {
    long total = 0;
    for (float[] values : tensors.values()) {
      total += 4L * values.length;
    }
    return total;
  }
}
