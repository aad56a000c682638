package dev.sparkprune.scoring.methods;

import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.ValidationException;
import java.util.Locale;
import java.util.function.Function;

/**
 * The methods a job can name, with what each needs: calibration activations (statistics of each
 * linear's input), X^T X, and the per-weight gradient statistic of the dense model's loss (GBLM,
 * Pruner-Zero: {@link LinearInputs#gradient}). The registry from a name to a {@link Pruner}.
 * Adding a method is one class with a {@code pruner(...)} factory and one entry here.
 */
public enum PruningMethod {
  MAGNITUDE(CalibrationStatistics.HessianStorage.NONE, false, false, group -> Magnitude.pruner(Magnitude.Scope.MATRIX)),
  WANDA(CalibrationStatistics.HessianStorage.NONE, true, false, Wanda::pruner),
  SPARSEGPT(
      CalibrationStatistics.HessianStorage.DOUBLE,
      true,
      false,
      group -> SparseGpt.pruner(SparseGpt.DEFAULT_PERCDAMP, SparseGpt.DEFAULT_BLOCK_SIZE)),
  RIA(CalibrationStatistics.HessianStorage.NONE, true, false, group -> Ria.pruner(Ria.DEFAULT_EXPONENT)),
  /** Wanda's activation term plus |W| |G| (per output row, as Wanda). */
  GBLM(CalibrationStatistics.HessianStorage.NONE, true, true, group -> Gblm.pruner()),
  /** |W|^2 times G min-max scaled over the matrix; no activations. */
  PRUNERZERO(CalibrationStatistics.HessianStorage.NONE, false, true, group -> PrunerZero.pruner());

  private final CalibrationStatistics.HessianStorage hessianStorage;
  private final boolean needsCalibration;
  private final boolean needsGradient;
  private final Function<Wanda.Group, Pruner> pruners;

  PruningMethod(
      CalibrationStatistics.HessianStorage hessianStorage, boolean needsCalibration, boolean needsGradient,
      Function<Wanda.Group, Pruner> pruners) {
    this.hessianStorage = hessianStorage;
    this.needsCalibration = needsCalibration;
    this.needsGradient = needsGradient;
    this.pruners = pruners;
  }

  public static PruningMethod parse(String name) {
    for (PruningMethod method : values()) {
      if (method.name().equalsIgnoreCase(name)) {
        return method;
      }
    }
    throw ValidationException.invalid("pruning method", "'" + name + "'", "use magnitude, wanda, sparsegpt, ria, gblm or prunerzero");
  }

  public String displayName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Whether the method scores with statistics of each linear's calibration activations. */
  public boolean needsCalibration() {
    return needsCalibration;
  }

  /** Whether the method scores with the dense model's per-weight loss gradient statistic. */
  public boolean needsGradient() {
    return needsGradient;
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
