package dev.sparkprune.jobs.calibration;

import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.arch.Linear;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The pruning methods' calibration statistics: per input group of a block ("block/group", see
 * {@link #key}), the sums of x_j^2 and x_j and, when asked, X^T X of the rows its linears read.
 * A routed expert's groups get their routed rows (or every row), and an entry even when no row
 * came, so every expert has statistics and its token count.
 */
public final class LinearInputStatistics implements BlockVisitor<CalibrationStatistics> {
  private static final long serialVersionUID = 1L;

  private final CalibrationStatistics.HessianStorage storage;
  private final InputHook.ExpertInputs expertInputs;

  public LinearInputStatistics(CalibrationStatistics.HessianStorage storage, InputHook.ExpertInputs expertInputs) {
    this.storage = Objects.requireNonNull(storage, "storage is null");
    this.expertInputs = Objects.requireNonNull(expertInputs, "expertInputs is null");
  }

  public CalibrationStatistics.HessianStorage storage() {
    return storage;
  }

  /** Linears of one block reading the same input share statistics under "block/input_group". */
  public static String key(int block, String inputGroup) {
    return block + "/" + inputGroup;
  }

  /** Per-channel sums only (Wanda, RIA) fold on the driver; X^T X (SparseGPT) stays distributed. */
  @Override
  public boolean foldOnDriver() {
    return storage == CalibrationStatistics.HessianStorage.NONE;
  }

  @Override
  public InputHook.ExpertInputs expertInputs() {
    return expertInputs;
  }

  @Override
  public ChunkVisit<CalibrationStatistics> start(int block, int chunk, ComputeBackend backend) {
    return new Visit(block, storage, expertInputs, backend);
  }

  @Override
  public CalibrationStatistics merge(CalibrationStatistics earlier, CalibrationStatistics later) {
    return earlier.merge(later);
  }

  private static final class Visit implements ChunkVisit<CalibrationStatistics> {
    private final Map<String, CalibrationStatistics> statistics = new LinkedHashMap<>();
    private final int block;
    private final CalibrationStatistics.HessianStorage storage;
    private final InputHook.ExpertInputs expertInputs;
    private final ComputeBackend backend;

    Visit(int block, CalibrationStatistics.HessianStorage storage, InputHook.ExpertInputs expertInputs, ComputeBackend backend) {
      this.block = block;
      this.storage = storage;
      this.expertInputs = expertInputs;
      this.backend = backend;
    }

    @Override
    public void accept(List<Linear> linears, float[] input, int tokens, int sequences) {
      Linear first = linears.get(0);
      statistics
          .computeIfAbsent(key(block, first.inputGroup()), key -> CalibrationStatistics.create((int) first.inFeatures(), storage))
          .add(input, 0, tokens, sequences, backend.linearAlgebra());
    }

    @Override
    public InputHook.ExpertInputs expertInputs() {
      return expertInputs;
    }

    @Override
    public Map<String, CalibrationStatistics> finish(HiddenStates input, HiddenStates output) {
      return statistics;
    }

    @Override
    public Map<String, CalibrationStatistics> finishPart() {
      return statistics;
    }
  }
}
