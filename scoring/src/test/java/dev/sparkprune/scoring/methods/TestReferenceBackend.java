package dev.sparkprune.scoring.methods;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.Fixture;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.backend.ColumnSweep;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.mask.Mask;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * The methods on a second backend written directly from the building blocks' contracts (sorts
 * for selection, loops and a copy of W for the column sweep): masks equal the reference
 * implementations' golden fixtures, and where no fixture exists they equal the CPU backend's on
 * the same BLAS bit for bit. So the methods rely on nothing but the documented blocks, as a GPU
 * backend must be able to provide them.
 */
class TestReferenceBackend {
  private static final LinearAlgebra JAVA = NetlibLinearAlgebra.javaOnly();
  private static final ComputeBackend REFERENCE = new ReferenceBackend(JAVA);
  private static final ComputeBackend CPU = new CpuBackend(JAVA);

  /** Each block as its contract states it, single-threaded, with W copied off the caller's array. */
  private static final class ReferenceBackend implements ComputeBackend {
    private final LinearAlgebra linalg;

    ReferenceBackend(LinearAlgebra linalg) {
      this.linalg = linalg;
    }

    @Override
    public String description() {
      return "reference";
    }

    @Override
    public LinearAlgebra linearAlgebra() {
      return linalg;
    }

    @Override
    public float kthSmallest(float[] values, int from, int to, long k) {
      float[] sorted = Arrays.copyOfRange(values, from, to);
      Arrays.sort(sorted);
      return sorted[(int) k];
    }

    @Override
    public void pruneLowestPerRow(int rows, int cols, RowScorer scorer, int pruned, RowSink sink, int threads) {
      pruneLowestPerGroup(rows, cols, scorer, pruned, cols, sink, threads);
    }

    @Override
    public void pruneLowestPerGroup(int rows, int cols, RowScorer scorer, int pruned, int groupSize, RowSink sink, int threads) {
      for (int r = 0; r < rows; r++) {
        float[] scores = new float[cols];
        scorer.score(r, scores);
        Mask.Builder row = Mask.builder(1, cols);
        for (int g = 0; g < cols; g += groupSize) {
          // A stable sort keeps equal scores in column order: the lower column is pruned first.
          Integer[] order = IntStream.range(g, g + groupSize).boxed().toArray(Integer[]::new);
          Arrays.sort(order, Comparator.comparingDouble(c -> scores[c]));
          for (int i = 0; i < pruned; i++) {
            row.prune(0, order[i]);
          }
        }
        sink.accept(r, row.build().bits());
      }
    }

    @Override
    public ColumnSweep openColumnSweep(float[] w, int rows, int cols, float[] factor) {
      float[] held = w.clone();
      return new ColumnSweep() {
        @Override
        public void readBlock(int i1, int count, float[] block) {
          for (int r = 0; r < rows; r++) {
            for (int i = 0; i < count; i++) {
              block[r * count + i] = held[r * cols + i1 + i];
            }
          }
        }

        @Override
        public void writeBlock(int i1, int count, float[] block) {
          for (int r = 0; r < rows; r++) {
            for (int i = 0; i < count; i++) {
              held[r * cols + i1 + i] = block[r * count + i];
            }
          }
        }

        @Override
        public void updateRight(float[] e, int i1, int i2) {
          int count = i2 - i1;
          for (int r = 0; r < rows; r++) {
            for (int c = i2; c < cols; c++) {
              float sum = 0;
              for (int i = 0; i < count; i++) {
                sum += e[r * count + i] * factor[(i1 + i) * cols + c];
              }
              held[r * cols + c] -= sum;
            }
          }
        }

        @Override
        public float[] result() {
          return held;
        }

        @Override
        public void close() {}
      };
    }
  }

  private static LinearInputs inputs(Fixture fixture) {
    return LinearInputs.of("W", fixture.weights())
        .withStatistics(TestGoldenFixtures.accumulate(fixture, CalibrationStatistics.HessianStorage.DOUBLE));
  }

  @Test
  void masksEqualTheReferenceImplementationsGoldenFixtures() {
    for (String name : Fixture.NAMES) {
      Fixture fixture = Fixture.load(name);
      LinearInputs inputs = inputs(fixture);
      for (String tag : Fixture.TAGS) {
        SparsityTarget target = Fixture.target(tag);
        for (PruningMethod method : new PruningMethod[] {PruningMethod.MAGNITUDE, PruningMethod.WANDA, PruningMethod.SPARSEGPT}) {
          PruneResult result = method.pruner().prune(inputs, target, REFERENCE, 2);
          assertThat(result.mask()).as("%s %s %s", name, method, tag).isEqualTo(fixture.mask(method.displayName(), tag));
        }
        float[] expected = fixture.floats("sparsegpt_" + tag + "_weight");
        float[] weights = PruningMethod.SPARSEGPT.pruner().prune(inputs, target, REFERENCE, 2).weights();
        for (int i = 0; i < expected.length; i++) {
          assertThat(Math.abs(weights[i] - expected[i])).as("%s %s SparseGPT weight %d", name, tag, i).isLessThanOrEqualTo(1e-4f);
        }
      }
    }
  }

  @Test
  void withoutAFixtureResultsEqualTheCpuBackendsOnTheSameBlas() {
    Refinement admm = new Refinement(Refinement.Update.ADMM, Admm.DEFAULTS, true, Dsnot.DEFAULTS, "");
    Refinement gradual = new Refinement(Refinement.Update.ADMM_GRADUAL, Admm.DEFAULTS, false, Dsnot.DEFAULTS, "");
    Pruner[] pruners = {
      PruningMethod.RIA.pruner(),
      PruningMethod.WANDA.pruner(Wanda.Group.MATRIX),
      Magnitude.pruner(Magnitude.Scope.ROW),
      admm.pruner(PruningMethod.WANDA, Wanda.Group.ROW),
      gradual.pruner(PruningMethod.WANDA, Wanda.Group.ROW),
      gradual.pruner(PruningMethod.WANDA, Wanda.Group.MATRIX),
    };
    // One fixture (odd widths) and one target of each kind keep this lean: ADMM runs 20 Java GEMMs per pruner.
    LinearInputs inputs = inputs(Fixture.load("odd"));
    for (String tag : new String[] {"u70", "2of4"}) {
      SparsityTarget target = Fixture.target(tag);
      for (int p = 0; p < pruners.length; p++) {
        PruneResult reference = pruners[p].prune(inputs, target, REFERENCE, 1);
        PruneResult cpu = pruners[p].prune(inputs, target, CPU, 2);
        assertThat(cpu.mask()).as("%s pruner %d", tag, p).isEqualTo(reference.mask());
        assertThat(cpu.weights()).as("%s pruner %d", tag, p).isEqualTo(reference.weights());
      }
    }
  }
}
