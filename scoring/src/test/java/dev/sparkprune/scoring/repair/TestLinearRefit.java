package dev.sparkprune.scoring.repair;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.tensorio.ValidationException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The least-squares refits against a direct float64 computation: the normal equations formed
 * from X and E themselves and solved by Gaussian elimination here (no Cholesky, no backend),
 * the residuals measured on the tokens, the ReplaceMe fold against the map applied explicitly,
 * and the sums folded over chunks (bit-identical over one pairwise tree of chunks, whatever
 * task computed which subtree; equal within rounding for another chunking).
 */
class TestLinearRefit {
  private static final LinearAlgebra LINALG = NetlibLinearAlgebra.defaultInstance();

  /** X [tokens x in] with a dead channel 3 and a few loud ones, W [out x in], E = Y - X W^T for a noisy other weight. */
  private record Problem(float[] x, float[] w, float[] e, int tokens, int in, int out) {}

  private static Problem problem(int tokens, int in, int out, long seed) {
    Random random = new Random(seed);
    float[] x = new float[tokens * in];
    for (int t = 0; t < tokens; t++) {
      for (int j = 0; j < in; j++) {
        x[t * in + j] = j == 3 ? 0f : (float) (random.nextGaussian() * (j % 7 == 0 ? 4 : 1) + (j % 5 == 0 ? 0.5 : 0));
      }
    }
    float[] w = new float[out * in];
    float[] other = new float[out * in];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) random.nextGaussian();
      other[i] = w[i] + (float) (0.3 * random.nextGaussian());
    }
    float[] e = new float[tokens * out];
    for (int t = 0; t < tokens; t++) {
      for (int r = 0; r < out; r++) {
        double y = 0.05 * random.nextGaussian();
        double current = 0;
        for (int j = 0; j < in; j++) {
          y += x[t * in + j] * (double) other[r * in + j];
          current += x[t * in + j] * (double) w[r * in + j];
        }
        e[t * out + r] = (float) (y - current);
      }
    }
    return new Problem(x, w, e, tokens, in, out);
  }

  private static LinearEquations equations(Problem p, int chunkTokens) {
    LinearEquations total = null;
    for (int start = 0; start < p.tokens; start += chunkTokens) {
      int count = Math.min(chunkTokens, p.tokens - start);
      LinearEquations part = LinearEquations.create(p.in, p.out);
      part.add(java.util.Arrays.copyOfRange(p.x, start * p.in, (start + count) * p.in),
          java.util.Arrays.copyOfRange(p.e, start * p.out, (start + count) * p.out), count, 1, LINALG);
      total = total == null ? part : total.merge(part);
    }
    return total;
  }

  @Test
  void columnRefitSolvesTheDampedNormalEquations() {
    Problem p = problem(300, 24, 10, 1);
    LinearRefit.Refit refit = LinearRefit.columns("test", p.w, equations(p, 128), 0.01, LINALG);

    // Direct: G = X^T X, C = X^T E in double from the tokens; lambda = 0.01 mean(diag G).
    double[][] g = new double[p.in][p.in];
    double[][] c = new double[p.in][p.out];
    for (int t = 0; t < p.tokens; t++) {
      for (int i = 0; i < p.in; i++) {
        double xi = p.x[t * p.in + i];
        for (int j = 0; j < p.in; j++) {
          g[i][j] += xi * p.x[t * p.in + j];
        }
        for (int r = 0; r < p.out; r++) {
          c[i][r] += xi * p.e[t * p.out + r];
        }
      }
    }
    double trace = 0;
    for (int i = 0; i < p.in; i++) {
      trace += g[i][i];
    }
    for (int i = 0; i < p.in; i++) {
      g[i][i] += 0.01 * trace / p.in;
    }
    double[][] delta = gaussianSolve(g, c);
    double worst = 0;
    for (int r = 0; r < p.out; r++) {
      for (int j = 0; j < p.in; j++) {
        double expected = p.w[r * p.in + j] + delta[j][r];
        worst = Math.max(worst, Math.abs(refit.weights()[r * p.in + j] - expected) / Math.max(1, Math.abs(expected)));
      }
      // The dead channel keeps its weights: the ridge pulls toward the current ones.
      assertThat(refit.weights()[r * p.in + 3]).isEqualTo(p.w[r * p.in + 3]);
    }
    assertThat(worst).isLessThan(1e-5);
    assertThat(refit.damping()).isEqualTo(0.01);

    // Residuals measured on the tokens: ||E||^2 before, ||E - X (W' - W)^T||^2 after.
    double before = 0;
    double after = 0;
    for (int t = 0; t < p.tokens; t++) {
      for (int r = 0; r < p.out; r++) {
        double change = 0;
        for (int j = 0; j < p.in; j++) {
          change += p.x[t * p.in + j] * ((double) refit.weights()[r * p.in + j] - p.w[r * p.in + j]);
        }
        double e = p.e[t * p.out + r];
        before += e * e;
        after += (e - change) * (e - change);
      }
    }
    assertThat(refit.errorBefore()).isCloseTo(before, org.assertj.core.data.Percentage.withPercentage(1e-4));
    assertThat(refit.errorAfter()).isCloseTo(after, org.assertj.core.data.Percentage.withPercentage(0.1));
    assertThat(after).isLessThan(0.05 * before);
  }

  @Test
  void foldedMapGivesTheOutputOfApplyingTheMapExplicitly() {
    Problem p = problem(400, 20, 8, 2);
    LinearRefit.Refit refit = LinearRefit.outputMap("test", p.w, equations(p, 100), 0.01, LINALG);

    // Direct: M = X W^T; T = I + (M^T M + lambda I)^-1 M^T E, lambda = 0.01 mean(diag M^T M).
    double[][] m = new double[p.tokens][p.out];
    for (int t = 0; t < p.tokens; t++) {
      for (int r = 0; r < p.out; r++) {
        for (int j = 0; j < p.in; j++) {
          m[t][r] += p.x[t * p.in + j] * (double) p.w[r * p.in + j];
        }
      }
    }
    double[][] mtm = new double[p.out][p.out];
    double[][] mte = new double[p.out][p.out];
    for (int t = 0; t < p.tokens; t++) {
      for (int a = 0; a < p.out; a++) {
        for (int b = 0; b < p.out; b++) {
          mtm[a][b] += m[t][a] * m[t][b];
          mte[a][b] += m[t][a] * p.e[t * p.out + b];
        }
      }
    }
    double trace = 0;
    for (int a = 0; a < p.out; a++) {
      trace += mtm[a][a];
    }
    for (int a = 0; a < p.out; a++) {
      mtm[a][a] += 0.01 * trace / p.out;
    }
    double[][] t = gaussianSolve(mtm, mte);
    for (int a = 0; a < p.out; a++) {
      t[a][a] += 1;
    }
    // X W'^T (the folded linear) against (X W^T) T (the map applied after it), token by token.
    double worst = 0;
    double scale = 0;
    double after = 0;
    for (int s = 0; s < p.tokens; s++) {
      for (int b = 0; b < p.out; b++) {
        double folded = 0;
        for (int j = 0; j < p.in; j++) {
          folded += p.x[s * p.in + j] * (double) refit.weights()[b * p.in + j];
        }
        double explicit = 0;
        for (int a = 0; a < p.out; a++) {
          explicit += m[s][a] * t[a][b];
        }
        worst = Math.max(worst, Math.abs(folded - explicit));
        scale = Math.max(scale, Math.abs(explicit));
        // The residual against the target M + E, with the map applied.
        double miss = explicit - (m[s][b] + p.e[s * p.out + b]);
        after += miss * miss;
      }
    }
    assertThat(worst).isLessThan(1e-5 * scale);
    assertThat(refit.errorAfter()).isCloseTo(after, org.assertj.core.data.Percentage.withPercentage(0.1));
    assertThat(refit.errorAfter()).isLessThan(refit.errorBefore());
  }

  @Test
  void defaultCholeskySolveAgreesWithLapack() {
    Random random = new Random(3);
    int n = 17;
    int m = 5;
    double[] a = new double[n * n];
    double[][] a2 = new double[n][n];
    for (int k = 0; k < 3 * n; k++) {
      double[] v = new double[n];
      for (int i = 0; i < n; i++) {
        v[i] = random.nextGaussian();
      }
      for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
          a[i * n + j] += v[i] * v[j];
          a2[i][j] += v[i] * v[j];
        }
      }
    }
    double[] b = new double[n * m];
    double[][] b2 = new double[n][m];
    for (int i = 0; i < b.length; i++) {
      b[i] = random.nextGaussian();
      b2[i / m][i % m] = b[i];
    }
    LinearAlgebra defaults = new LinearAlgebra() {
      @Override
      public String description() {
        return "defaults";
      }

      @Override
      public void gemm(int m1, int n1, int k, float alpha, float[] x, int xo, int lda, float[] y, int yo, int ldb, float beta, float[] c, int co, int ldc) {
        LINALG.gemm(m1, n1, k, alpha, x, xo, lda, y, yo, ldb, beta, c, co, ldc);
      }

      @Override
      public void gemmTransposedB(
          int m1, int n1, int k, float alpha, float[] x, int xo, int lda, float[] y, int yo, int ldb, float beta, float[] c, int co, int ldc) {
        LINALG.gemmTransposedB(m1, n1, k, alpha, x, xo, lda, y, yo, ldb, beta, c, co, ldc);
      }

      @Override
      public void gramLower(int n1, int k, float[] x, int xOffset, float[] c) {
        LINALG.gramLower(n1, k, x, xOffset, c);
      }

      @Override
      public boolean upperCholeskyOfInverse(double[] x, int n1) {
        return LINALG.upperCholeskyOfInverse(x, n1);
      }
    };
    double[] viaDefault = b.clone();
    double[] viaLapack = b.clone();
    assertThat(defaults.choleskySolve(a.clone(), n, viaDefault, m)).isTrue();
    assertThat(LINALG.choleskySolve(a.clone(), n, viaLapack, m)).isTrue();
    double[][] expected = gaussianSolve(a2, b2);
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < m; c++) {
        assertThat(viaDefault[i * m + c]).isCloseTo(expected[i][c], org.assertj.core.data.Offset.offset(1e-9 * Math.max(1, Math.abs(expected[i][c]))));
        assertThat(viaLapack[i * m + c]).isCloseTo(expected[i][c], org.assertj.core.data.Offset.offset(1e-9 * Math.max(1, Math.abs(expected[i][c]))));
      }
    }
  }

  @Test
  void indefiniteGramFailsWithOneLine() {
    // Eigenvalues 4 and -2: not positive definite even with damping 1 x mean(diag).
    assertThatThrownBy(() -> LeastSquares.ridge("model.layers.0.mlp.down_proj.weight", new double[] {1, 3, 3, 1}, 2, new double[] {1, 1}, 1, 0.01, LINALG))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot refit model.layers.0.mlp.down_proj.weight: X^T X + damping is not positive definite even with damping 1.0 x mean(diag);"
            + " the calibration statistics are degenerate");
    assertThatThrownBy(() -> LeastSquares.ridge("w", new double[] {1, 0, 0, 1}, 2, new double[] {1, Double.NaN}, 1, 0.01, LINALG))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot refit w: the calibration cross term holds NaN");
    assertThatThrownBy(() -> new RepairSettings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.NEXT, RepairSettings.Scope.ALL, 0))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid repair damping 0.0: give a fraction in (0, 1.0] of mean(diag X^T X)");
  }

  @Test
  void sumsFoldedOverOnePairwiseTreeAreBitIdenticalWhateverComputedEachSubtree() throws Exception {
    Problem p = problem(7 * 40, 16, 6, 4);
    List<LinearEquations> chunks = new ArrayList<>();
    for (int c = 0; c < 7; c++) {
      chunks.add(equations(slice(p, c * 40, 40), 40));
    }
    // One place folds the whole tree; another computes the subtrees in two "tasks" (chunks 0-3 and 4-6),
    // ships them serialized, and a reducer merges the two: the same merges of the same values.
    LinearEquations whole = treeFold(copies(chunks), 0, 8);
    LinearEquations left = roundTrip(treeFold(copies(chunks), 0, 4));
    LinearEquations right = roundTrip(treeFold(copies(chunks), 4, 4));
    LinearEquations reduced = left.merge(right);
    assertThat(reduced.xtx()).isEqualTo(whole.xtx());
    assertThat(reduced.xte()).isEqualTo(whole.xte());
    assertThat(reduced.errorSquares()).isEqualTo(whole.errorSquares());
    LinearRefit.Refit a = LinearRefit.columns("w", p.w, whole, 0.01, LINALG);
    LinearRefit.Refit b = LinearRefit.columns("w", p.w, reduced, 0.01, LINALG);
    assertThat(b.weights()).isEqualTo(a.weights());

    // Another chunking of the same tokens (2 chunks instead of 7) agrees within rounding.
    LinearRefit.Refit other = LinearRefit.columns("w", p.w, equations(p, 140), 0.01, LINALG);
    for (int i = 0; i < a.weights().length; i++) {
      assertThat(other.weights()[i]).isCloseTo(a.weights()[i], org.assertj.core.data.Offset.offset(1e-4f * Math.max(1, Math.abs(a.weights()[i]))));
    }
  }

  /** Node of the pairwise tree covering chunks [first, first + size) (size a power of two), the left child alone where the right covers none. */
  private static LinearEquations treeFold(List<LinearEquations> chunks, int first, int size) {
    if (size == 1) {
      return chunks.get(first);
    }
    LinearEquations left = treeFold(chunks, first, size / 2);
    return first + size / 2 >= chunks.size() ? left : left.merge(treeFold(chunks, first + size / 2, size / 2));
  }

  private static List<LinearEquations> copies(List<LinearEquations> chunks) throws Exception {
    List<LinearEquations> out = new ArrayList<>();
    for (LinearEquations chunk : chunks) {
      out.add(roundTrip(chunk));
    }
    return out;
  }

  private static LinearEquations roundTrip(LinearEquations value) throws IOException, ClassNotFoundException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(value);
    }
    try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      return (LinearEquations) in.readObject();
    }
  }

  private static Problem slice(Problem p, int first, int count) {
    return new Problem(java.util.Arrays.copyOfRange(p.x, first * p.in, (first + count) * p.in), p.w,
        java.util.Arrays.copyOfRange(p.e, first * p.out, (first + count) * p.out), count, p.in, p.out);
  }

  /** A X = B by Gaussian elimination with partial pivoting, in double (independent of any Cholesky). */
  static double[][] gaussianSolve(double[][] a, double[][] b) {
    int n = a.length;
    int m = b[0].length;
    double[][] x = new double[n][];
    double[][] aa = new double[n][];
    for (int i = 0; i < n; i++) {
      aa[i] = a[i].clone();
      x[i] = b[i].clone();
    }
    for (int col = 0; col < n; col++) {
      int pivot = col;
      for (int r = col + 1; r < n; r++) {
        if (Math.abs(aa[r][col]) > Math.abs(aa[pivot][col])) {
          pivot = r;
        }
      }
      double[] swap = aa[col];
      aa[col] = aa[pivot];
      aa[pivot] = swap;
      swap = x[col];
      x[col] = x[pivot];
      x[pivot] = swap;
      for (int r = 0; r < n; r++) {
        if (r != col) {
          double f = aa[r][col] / aa[col][col];
          for (int c = col; c < n; c++) {
            aa[r][c] -= f * aa[col][c];
          }
          for (int c = 0; c < m; c++) {
            x[r][c] -= f * x[col][c];
          }
        }
      }
    }
    for (int r = 0; r < n; r++) {
      for (int c = 0; c < m; c++) {
        x[r][c] /= aa[r][r];
      }
    }
    return x;
  }
}
