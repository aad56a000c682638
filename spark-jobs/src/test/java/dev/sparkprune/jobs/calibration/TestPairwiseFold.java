package dev.sparkprune.jobs.calibration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.backend.ComputeBackend;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The fixed pairwise tree, with a merge that shows its shape, on every split of the chunks into contiguous partitions. */
class TestPairwiseFold {
  /** Merging writes the tree out: "(a+b)". */
  private static final BlockVisitor<String> SHAPE = new BlockVisitor<>() {
    @Override
    public ChunkVisit<String> start(int block, int chunk, ComputeBackend backend) {
      throw new UnsupportedOperationException();
    }

    @Override
    public String merge(String earlier, String later) {
      return "(" + earlier + "+" + later + ")";
    }
  };

  /** The tree written out directly: the root covers the smallest power of two >= n; a node without right chunks is its left half. */
  private static String expected(int n) {
    int size = 1;
    while (size < n) {
      size *= 2;
    }
    return node(n, 0, size);
  }

  private static String node(int n, int first, int size) {
    if (size == 1) {
      return Integer.toString(first);
    }
    String left = node(n, first, size / 2);
    return first + size / 2 >= n ? left : "(" + left + "+" + node(n, first + size / 2, size / 2) + ")";
  }

  @Test
  void everyContiguousPartitioningFoldsTheSameTree() {
    assertThat(expected(4)).isEqualTo("((0+1)+(2+3))");
    assertThat(expected(5)).isEqualTo("(((0+1)+(2+3))+4)");
    for (int n = 1; n <= 17; n++) {
      // Every way to cut 0..n-1 into contiguous runs (all of them for small n, a sample beyond).
      int cuts = n - 1;
      for (long mask = 0; mask < (1L << Math.min(cuts, 12)); mask++) {
        List<ChunkPartial<String>> shipped = new ArrayList<>();
        int maxShipped = 0;
        PairwiseFold<String> task = new PairwiseFold<>(n, SHAPE);
        for (int chunk = 0; chunk < n; chunk++) {
          task.addChunk(chunk, Integer.toString(chunk));
          boolean cut = chunk == n - 1 || (chunk < 12 && (mask >> chunk & 1) == 1) || (chunk >= 12 && chunk % 5 == 0);
          if (cut) {
            List<ChunkPartial<String>> nodes = task.nodes();
            maxShipped = Math.max(maxShipped, nodes.size());
            shipped.addAll(nodes);
            task = new PairwiseFold<>(n, SHAPE);
          }
        }
        PairwiseFold<String> reducer = new PairwiseFold<>(n, SHAPE);
        shipped.forEach(reducer::add);
        assertThat(reducer.result()).as("n=%d, cuts %s", n, Long.toBinaryString(mask)).isEqualTo(expected(n));
        // A partition ships at most two subtrees per level of the tree.
        assertThat(maxShipped).isLessThanOrEqualTo(2 * (32 - Integer.numberOfLeadingZeros(Math.max(1, n - 1))) + 1);
      }
    }
  }

  @Test
  void alignedPartitionsShipOneSubtreeEach() {
    PairwiseFold<String> task = new PairwiseFold<>(16, SHAPE);
    for (int chunk = 8; chunk < 16; chunk++) {
      task.addChunk(chunk, Integer.toString(chunk));
    }
    assertThat(task.nodes()).hasSize(1);
    assertThat(task.nodes().get(0).level()).isEqualTo(3);
    assertThat(task.nodes().get(0).value()).isEqualTo("(((8+9)+(10+11))+((12+13)+(14+15)))");
  }

  @Test
  void missingOrRepeatedChunksAreRefused() {
    PairwiseFold<String> fold = new PairwiseFold<>(4, SHAPE);
    fold.addChunk(0, "0");
    fold.addChunk(1, "1");
    fold.addChunk(3, "3");
    assertThatThrownBy(fold::result).isInstanceOf(IllegalStateException.class).hasMessageContaining("missing");
    assertThatThrownBy(() -> fold.addChunk(1, "1")).isInstanceOf(IllegalStateException.class);
  }
}
