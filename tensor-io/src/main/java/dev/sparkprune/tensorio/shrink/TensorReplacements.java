package dev.sparkprune.tensorio.shrink;

import java.io.IOException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * New values for some tensors of a shrunk archive (a repaired o_proj or down_proj), by their
 * name in the shrunk archive, in the shrunk shape, row-major floats: {@link ShrunkArchive}
 * encodes them in the tensor's dtype instead of copying the source bytes. Where the values come
 * from (memory, a staged file per block) is the caller's; a shard writer reads only its own.
 */
public interface TensorReplacements {
  /** No tensor replaced: the archive is the plan's byte-for-byte slice of the source. */
  TensorReplacements NONE = of(Map.of());

  /** The target names replaced. */
  Set<String> names();

  /** The values of one replaced tensor, row-major in the shrunk shape. */
  float[] values(String target) throws IOException;

  /** Replacements held in memory (the map is copied; the arrays are not). */
  static TensorReplacements of(Map<String, float[]> tensors) {
    Map<String, float[]> copy = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    return new TensorReplacements() {
      @Override
      public Set<String> names() {
        return copy.keySet();
      }

      @Override
      public float[] values(String target) {
        float[] values = copy.get(target);
        if (values == null) {
          throw new IllegalArgumentException("No replacement for tensor " + target);
        }
        return values;
      }
    };
  }
}
