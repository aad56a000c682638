package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.ValidationException;
import java.util.Locale;

/**
 * A pruning method as the job sees it: (weights, statistics, target) -> (mask, weights). The
 * kernels themselves ({@link Magnitude}, {@link Wanda}, {@link SparseGpt}) take plain arrays.
 */
public enum PruningMethod {
  MAGNITUDE(CalibrationStatistics.HessianStorage.NONE, false),
  WANDA(CalibrationStatistics.HessianStorage.NONE, true),
  SPARSEGPT(CalibrationStatistics.HessianStorage.DOUBLE, true),
  RIA(CalibrationStatistics.HessianStorage.NONE, true);

  private final CalibrationStatistics.HessianStorage hessianStorage;
  private final boolean needsCalibration;

  PruningMethod(CalibrationStatistics.HessianStorage hessianStorage, boolean needsCalibration) {
    this.hessianStorage = hessianStorage;
    this.needsCalibration = needsCalibration;
  }

  public static PruningMethod parse(String name) {
    for (PruningMethod method : values()) {
      if (method.name().equalsIgnoreCase(name)) {
        return method;
      }
    }
    throw ValidationException.invalid("pruning method", "'" + name + "'", "use magnitude, wanda, sparsegpt or ria");
  }

  public String displayName() {
    return name().toLowerCase(Locale.ROOT);
  }

  public boolean needsCalibration() {
    return needsCalibration;
  }

  /** What calibration must keep for this method: SparseGPT needs X^T X. */
  public CalibrationStatistics.HessianStorage hessianStorage() {
    return hessianStorage;
  }

  /** Prunes with the reference defaults: Wanda per row, magnitude per matrix, SparseGPT 1% / 128, RIA a = 0.5. */
  public PruneResult prune(
      String layer, Weights weights, CalibrationStatistics statistics, SparsityTarget target, ComputeBackend backend, int threads) {
    return prune(layer, weights, statistics, target, backend, threads, Wanda.Group.ROW);
  }

  /** As the reference defaults, with Wanda's comparison group chosen (row, or the whole layer). */
  public PruneResult prune(
      String layer, Weights weights, CalibrationStatistics statistics, SparsityTarget target, ComputeBackend backend, int threads,
      Wanda.Group wandaGroup) {
    switch (this) {
      case MAGNITUDE:
        return Magnitude.prune(layer, weights, target, Magnitude.Scope.MATRIX, threads);
      case WANDA:
        return backend.wanda(layer, weights, requireStatistics(layer, statistics).scalerRow(), target, wandaGroup, threads);
      case SPARSEGPT:
        return backend.sparseGpt(
            layer,
            weights,
            requireStatistics(layer, statistics).hessian(),
            target,
            SparseGpt.DEFAULT_PERCDAMP,
            SparseGpt.DEFAULT_BLOCK_SIZE,
            threads);
      case RIA:
        return Ria.prune(layer, weights, requireStatistics(layer, statistics).scalerRow(), target, Ria.DEFAULT_EXPONENT, threads);
      default:
        throw new IllegalStateException("Unknown method " + this);
    }
  }

  private CalibrationStatistics requireStatistics(String layer, CalibrationStatistics statistics) {
    ValidationException.check(statistics != null, "Cannot prune layer %s with %s: no calibration statistics", layer, displayName());
    return statistics;
  }
}
