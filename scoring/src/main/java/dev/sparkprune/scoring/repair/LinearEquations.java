package dev.sparkprune.scoring.repair;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;

/**
 * The normal equations of one linear's least-squares refit over the calibration tokens: X^T X of
 * its input X (the calibration pass's own {@link CalibrationStatistics}, X^T X kept in double)
 * and, for the error E the refit should remove (target minus the current output, [tokens x
 * outputs]), the cross term X^T E and ‖E‖². That is everything a refit needs: the solve, and
 * the residual before and after it, come from these sums alone.
 *
 * <p>Partials over disjoint tokens merge by addition ({@link #merge}); a job that needs
 * bit-identical results merges them in a fixed order (the calibration pass's pairwise tree of
 * chunks). Within one {@link #add}, X^T E is a float GEMM per run of at most
 * {@link CalibrationStatistics#CHUNK_TOKENS} tokens added into double, as X^T X is.
 */
public final class LinearEquations implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int inputs;
  private final int outputs;
  private final CalibrationStatistics gram;
  /** [inputs x outputs] row-major: X^T E. */
  private final double[] cross;
  private double errorSquares;
  private transient float[] transposed;
  private transient float[] chunkCross;

  private LinearEquations(int inputs, int outputs) {
    ValidationException.check(inputs > 0 && outputs > 0, "Invalid least-squares shape: %d inputs, %d outputs", inputs, outputs);
    ValidationException.check(
        (long) inputs * outputs <= Integer.MAX_VALUE - 16, "Cannot keep X^T E for %d inputs and %d outputs in one array", inputs, outputs);
    this.inputs = inputs;
    this.outputs = outputs;
    this.gram = CalibrationStatistics.create(inputs, CalibrationStatistics.HessianStorage.DOUBLE);
    this.cross = new double[inputs * outputs];
  }

  /** No tokens yet, for a linear with {@code inputs} input and {@code outputs} output features. */
  public static LinearEquations create(int inputs, int outputs) {
    return new LinearEquations(inputs, outputs);
  }

  /**
   * Adds {@code tokens} rows of the linear's input {@code x} [tokens x inputs] and of the error
   * {@code e} [tokens x outputs], which came from {@code sequences} calibration sequences.
   */
  public void add(float[] x, float[] e, int tokens, int sequences, LinearAlgebra linalg) {
    ValidationException.check(
        x.length >= (long) tokens * inputs && e.length >= (long) tokens * outputs,
        "Cannot add %d tokens: the input holds %d values of width %d, the error %d of width %d", tokens, x.length, inputs, e.length, outputs);
    gram.add(x, 0, tokens, sequences, linalg);
    for (int i = 0; i < tokens * outputs; i++) {
      double value = e[i];
      errorSquares += value * value;
    }
    int step = CalibrationStatistics.CHUNK_TOKENS;
    if (transposed == null) {
      transposed = new float[inputs * Math.min(step, Math.max(1, tokens))];
      chunkCross = new float[inputs * outputs];
    }
    for (int start = 0; start < tokens; start += step) {
      int count = Math.min(step, tokens - start);
      if (transposed.length < inputs * count) {
        transposed = new float[inputs * count];
      }
      // X^T of the run, [inputs x count], so X^T E is one row-major GEMM.
      for (int t = 0; t < count; t++) {
        int row = (start + t) * inputs;
        for (int j = 0; j < inputs; j++) {
          transposed[j * count + t] = x[row + j];
        }
      }
      linalg.gemm(inputs, outputs, count, 1f, transposed, 0, count, e, start * outputs, outputs, 0f, chunkCross, 0, outputs);
      for (int i = 0; i < cross.length; i++) {
        cross[i] += chunkCross[i];
      }
    }
  }

  /** Adds {@code other} (the sums over later tokens) into this one and returns this. */
  public LinearEquations merge(LinearEquations other) {
    ValidationException.check(
        other.inputs == inputs && other.outputs == outputs,
        "Cannot merge least-squares sums of %d x %d into %d x %d", other.inputs, other.outputs, inputs, outputs);
    gram.merge(other.gram);
    for (int i = 0; i < cross.length; i++) {
      cross[i] += other.cross[i];
    }
    errorSquares += other.errorSquares;
    return this;
  }

  public int inputs() {
    return inputs;
  }

  public int outputs() {
    return outputs;
  }

  public long tokens() {
    return gram.tokens();
  }

  /** X^T X, [inputs x inputs] full symmetric (a copy). */
  public double[] xtx() {
    return gram.xtx();
  }

  /** X^T E, [inputs x outputs] row-major (a copy). */
  public double[] xte() {
    return cross.clone();
  }

  /** ‖E‖² over the tokens: the squared residual with the current weights. */
  public double errorSquares() {
    return errorSquares;
  }
}
