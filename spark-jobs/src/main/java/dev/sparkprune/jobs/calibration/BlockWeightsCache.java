package dev.sparkprune.jobs.calibration;

import dev.sparkprune.scoring.model.BlockWeights;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Decoded block weights, shared by the tasks of one executor JVM, so a block is read and
 * decoded once per executor per block rather than once per task. Bounded to
 * {@link #MAX_BLOCKS} blocks of fp32 weights (least recently used out): a sequential step needs
 * two at once, the pruned block it advances through and the dense next block it calibrates.
 * Keys carry the run's staging folder, unique per run, so a run's pruned tensors never meet
 * another run's, nor the dense weights of a model since rewritten at the same path.
 */
final class BlockWeightsCache {
  /** At most two blocks' fp32 weights per executor JVM, whatever the number of its tasks. */
  static final int MAX_BLOCKS = 2;

  private static final Map<String, BlockWeights> BLOCKS = new LinkedHashMap<>(4, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<String, BlockWeights> eldest) {
      return size() > MAX_BLOCKS;
    }
  };

  @FunctionalInterface
  interface Loader {
    BlockWeights load() throws IOException;
  }

  private BlockWeightsCache() {}

  static String key(String staging, int block, String variant) {
    return staging + "#" + block + "#" + variant;
  }

  /**
   * The cached block, or the loader's, cached. Loads under the lock: concurrent tasks of one
   * executor want the same block, and one load beats two copies in memory.
   */
  static BlockWeights get(String key, Loader loader) throws IOException {
    synchronized (BLOCKS) {
      BlockWeights cached = BLOCKS.get(key);
      if (cached == null) {
        cached = loader.load();
        BLOCKS.put(key, cached);
      }
      return cached;
    }
  }

  /** Drops a finished run's blocks (in local mode the driver's JVM is the executor). */
  static void evictRun(String staging) {
    synchronized (BLOCKS) {
      BLOCKS.keySet().removeIf(key -> key.startsWith(staging + "#"));
    }
  }
}
