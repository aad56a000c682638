package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.ValidationException;
import java.util.Locale;
import java.util.function.Function;

/**
 * The methods a job can name, with what each needs from calibration: the registry from a name to
 * a {@link Pruner}. Adding a method is one class with a {@code pruner(...)} factory and one entry
 * here.
 */
public enum PruningMethod {
  MAGNITUDE(CalibrationStatistics.HessianStorage.NONE, false, group -> Magnitude.pruner(Magnitude.Scope.MATRIX)),
  WANDA(CalibrationStatistics.HessianStorage.NONE, true, Wanda::pruner),
  SPARSEGPT(
      CalibrationStatistics.HessianStorage.DOUBLE,
      true,
      group -> SparseGpt.pruner(SparseGpt.DEFAULT_PERCDAMP, SparseGpt.DEFAULT_BLOCK_SIZE)),
  RIA(CalibrationStatistics.HessianStorage.NONE, true, group -> Ria.pruner(Ria.DEFAULT_EXPONENT));

  private final CalibrationStatistics.HessianStorage hessianStorage;
  private final boolean needsCalibration;
  private final Function<Wanda.Group, Pruner> pruners;

  PruningMethod(CalibrationStatistics.HessianStorage hessianStorage, boolean needsCalibration, Function<Wanda.Group, Pruner> pruners) {
    this.hessianStorage = hessianStorage;
    this.needsCalibration = needsCalibration;
    this.pruners = pruners;
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

  /** The method with the reference defaults: Wanda per row, magnitude per matrix, SparseGPT 1% / 128, RIA a = 0.5. */
  public Pruner pruner() {
    return pruner(Wanda.Group.ROW);
  }

  /** As the reference defaults, with Wanda's comparison group chosen (row, or the whole layer); other methods ignore it. */
  public Pruner pruner(Wanda.Group wandaGroup) {
    return pruners.apply(wandaGroup);
  }
}
