package dev.sparkprune.scoring.repair;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Training-free repair of a shrunk model, block by block as SparseGPT prunes (each block fitted
 * on the inputs of the already repaired blocks before it), in one process: the reference a
 * distributed job must equal, and what the size-budget search scores candidates with.
 *
 * <p>Two streams run side by side over the calibration chunks: the dense source model's and the
 * shrunk model's (opened from the unrepaired shrunk archive). For each kept block, in order, as
 * its {@link RepairStep} says:
 *
 * <ol>
 *   <li>the dense stream advances to the step's target point (the input of the next kept block
 *       for a block that takes a dropped run's change, else the output of the same source block);
 *   <li>o_proj is refitted ({@link LinearRefit#columns}) from the sums of its input and
 *       E = target − block output, when the block's KV groups were cut;
 *   <li>the block runs again with the new o_proj and down_proj is refitted the same way
 *       (ReplaceMe's {@link LinearRefit#outputMap} where asked), when its MLP channels were cut
 *       or it takes a dropped run's change; with {@link RepairSettings.Target#LOCAL}, E is the
 *       dense MLP on the same MLP input minus the shrunk one;
 *   <li>the shrunk stream advances through the repaired block.
 * </ol>
 *
 * Each refit is a pure function of that block's {@link LinearEquations} (summed over the
 * chunks in chunk order), the block's current weights and the settings: what a job computes
 * per block on an executor. Sparse (mixture-of-experts) blocks refit o_proj only.
 *
 * <p>Held-out windows, when given, ride along without contributing to any sum: their mean
 * next-token NLL through the repaired and through the unrepaired shrunk model is the
 * size-budget objective.
 *
 * <p>Memory: per calibration chunk the dense and shrunk hidden states (2 × tokens × hidden
 * floats), one captured linear input and its error per chunk while a block's sums are gathered,
 * one dense and one shrunk block's weights, and the equations of one linear (in² + in × out
 * doubles, in² floats of scratch).
 */
public final class SequentialRepair {
  private static final String O_PROJ = "self_attn.o_proj";
  private static final String DOWN_PROJ = "mlp.down_proj";
  private static final String GATE_PROJ = "mlp.gate_proj";
  private static final String UP_PROJ = "mlp.up_proj";

  private SequentialRepair() {}

  /**
   * One refit: the shrunk block and its source block, the tensor (its name in the shrunk
   * archive), how it was fitted ({@code columns} or {@code map}), the squared residual ‖E‖² on
   * the calibration tokens before and after, and the damping fraction used.
   */
  public record BlockRefit(int block, int sourceBlock, String tensor, String fit, double errorBefore, double errorAfter, long tokens, double damping) {}

  /**
   * The replacement tensors by name in the shrunk archive (shrunk shapes), every refit, and the
   * held-out mean NLL through the repaired and the unrepaired shrunk model (NaN without held-out windows).
   */
  public record Result(Map<String, float[]> tensors, List<BlockRefit> refits, double heldOutNll, double heldOutNllUnrepaired) {
    public Result {
      tensors = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
      refits = List.copyOf(refits);
    }
  }

  /**
   * @param dense the source model
   * @param shrunk the unrepaired shrunk archive's model (the plan applied to the source)
   * @param chunks calibration chunks in chunk order (each a batch of equal-length windows)
   * @param heldOut held-out windows in batches, scored and never fitted on; may be empty
   */
  public static Result run(
      DecoderModel dense, DecoderModel shrunk, ShrinkPlan plan, RepairSettings settings, List<int[][]> chunks, List<int[][]> heldOut,
      LinearAlgebra linalg) throws IOException {
    Objects.requireNonNull(settings, "settings is null");
    ValidationException.check(!chunks.isEmpty(), "Cannot repair: no calibration chunks");
    ValidationException.check(
        shrunk.layout().blocks().size() == plan.blocks().size(),
        "Cannot repair: the shrunk model has %d blocks, the plan keeps %d", shrunk.layout().blocks().size(), plan.blocks().size());
    List<HiddenStates> denseStream = new ArrayList<>();
    List<HiddenStates> stream = new ArrayList<>();
    for (int[][] chunk : chunks) {
      denseStream.add(dense.embed(chunk));
      stream.add(shrunk.embed(chunk));
    }
    List<HiddenStates> heldRepaired = new ArrayList<>();
    List<HiddenStates> heldPlain = new ArrayList<>();
    for (int[][] batch : heldOut) {
      heldRepaired.add(shrunk.embed(batch));
      heldPlain.add(heldRepaired.get(heldRepaired.size() - 1));
    }

    int densePosition = 0;
    Map<String, float[]> tensors = new LinkedHashMap<>();
    List<BlockRefit> refits = new ArrayList<>();
    boolean normalized = settings.target() == RepairSettings.Target.NORMALIZED;
    for (RepairStep step : RepairStep.plan(plan, settings)) {
      int i = step.block();
      for (; densePosition < step.targetBlock(); densePosition++) {
        BlockWeights weights = dense.loadBlock(densePosition);
        for (int c = 0; c < denseStream.size(); c++) {
          denseStream.set(c, dense.runBlock(weights, denseStream.get(c), InputHook.NONE));
        }
      }
      BlockWeights original = shrunk.loadBlock(i);
      BlockWeights weights = original;
      if (step.refitAttention()) {
        Linear oProj = linear(shrunk, i, O_PROJ);
        LinearEquations equations = collect(shrunk, weights, stream, denseStream, oProj, null, normalized, linalg);
        LinearRefit.Refit refit = LinearRefit.columns(oProj.tensorName(), weights.tensor(oProj.tensorName()), equations, settings.damping(), linalg);
        weights = weights.withTensor(oProj.tensorName(), refit.weights());
        tensors.put(oProj.tensorName(), refit.weights());
        refits.add(new BlockRefit(
            i, step.source(), oProj.tensorName(), "columns", refit.errorBefore(), refit.errorAfter(), equations.tokens(), refit.damping()));
      }
      if (step.refitMlp()) {
        Linear downProj = linear(shrunk, i, DOWN_PROJ);
        DenseMlp mlp = step.local() ? DenseMlp.of(dense, step.source(), linalg) : null;
        LinearEquations equations = collect(shrunk, weights, stream, denseStream, downProj, mlp, normalized, linalg);
        float[] current = weights.tensor(downProj.tensorName());
        LinearRefit.Refit refit = step.map()
            ? LinearRefit.outputMap(downProj.tensorName(), current, equations, settings.damping(), linalg)
            : LinearRefit.columns(downProj.tensorName(), current, equations, settings.damping(), linalg);
        weights = weights.withTensor(downProj.tensorName(), refit.weights());
        tensors.put(downProj.tensorName(), refit.weights());
        refits.add(new BlockRefit(i, step.source(), downProj.tensorName(), step.map() ? "map" : "columns", refit.errorBefore(),
            refit.errorAfter(), equations.tokens(), refit.damping()));
      }
      for (int c = 0; c < stream.size(); c++) {
        stream.set(c, shrunk.runBlock(weights, stream.get(c), InputHook.NONE));
      }
      for (int h = 0; h < heldRepaired.size(); h++) {
        heldRepaired.set(h, shrunk.runBlock(weights, heldRepaired.get(h), InputHook.NONE));
        heldPlain.set(h, shrunk.runBlock(original, heldPlain.get(h), InputHook.NONE));
      }
    }
    return new Result(tensors, refits, meanNll(shrunk, heldRepaired, heldOut), meanNll(shrunk, heldPlain, heldOut));
  }

  /**
   * One chunk's sums for the refit of {@code linear} (the block's o_proj or down_proj, see
   * {@link #refitLinear}) with the block's current {@code weights}: what a job computes per chunk
   * on an executor and folds; {@link #run} adds the same per chunk in chunk order. Stream targets
   * only ({@link RepairSettings.Target#LOCAL} needs the dense MLP: in-process only).
   *
   * @param input the shrunk stream entering the block
   * @param target the dense stream at the step's target point
   */
  public static LinearEquations chunkEquations(
      DecoderModel shrunk, BlockWeights weights, HiddenStates input, HiddenStates target, Linear linear, RepairSettings settings,
      LinearAlgebra linalg) {
    ValidationException.check(settings.target() != RepairSettings.Target.LOCAL, "Cannot gather a local-target refit per chunk: use the stream target");
    return collect(shrunk, weights, List.of(input), List.of(target), linear, null, settings.target() == RepairSettings.Target.NORMALIZED, linalg);
  }

  /** The dense linear a step refits at shrunk block {@code block}: o_proj ({@code attention}) or down_proj. */
  public static Linear refitLinear(DecoderModel shrunk, int block, boolean attention) {
    return linear(shrunk, block, attention ? O_PROJ : DOWN_PROJ);
  }

  /** The refit of a step's linear from its folded sums: all columns, or ReplaceMe's map where the step says so. */
  public static LinearRefit.Refit solve(
      RepairStep step, boolean attention, String tensor, float[] current, LinearEquations equations, RepairSettings settings,
      LinearAlgebra linalg) {
    return !attention && step.map()
        ? LinearRefit.outputMap(tensor, current, equations, settings.damping(), linalg)
        : LinearRefit.columns(tensor, current, equations, settings.damping(), linalg);
  }

  /** Sums of one linear's input and the error its refit should remove, over every chunk in order. */
  private static LinearEquations collect(
      DecoderModel shrunk, BlockWeights weights, List<HiddenStates> stream, List<HiddenStates> target, Linear linear, DenseMlp local,
      boolean normalized, LinearAlgebra linalg) {
    LinearEquations equations = LinearEquations.create((int) linear.inFeatures(), (int) linear.outFeatures());
    for (int c = 0; c < stream.size(); c++) {
      HiddenStates input = stream.get(c);
      Capture capture = new Capture(linear.name(), local);
      HiddenStates output = shrunk.runBlock(weights, input, capture);
      ValidationException.check(capture.input != null, "Cannot repair %s: the forward pass never gave its input", linear.tensorName());
      float[] error;
      if (local != null) {
        error = local.error(capture.mlpInput, capture.input, weights.tensor(linear.tensorName()), input.tokens());
      } else {
        float[] wanted = target.get(c).values();
        float[] got = output.values();
        error = new float[got.length];
        for (int k = 0; k < error.length; k++) {
          error[k] = wanted[k] - got[k];
        }
      }
      if (normalized) {
        weighByTargetNorm(capture.input, error, target.get(c).values(), input.tokens(), (int) linear.inFeatures(), input.width());
      }
      equations.add(capture.input, error, input.tokens(), input.sequences(), linalg);
    }
    return equations;
  }

  /** Scales token t's input and error rows by 1 / rms(target_t), so the sums weigh it by 1 / rms². */
  private static void weighByTargetNorm(float[] x, float[] e, float[] target, int tokens, int in, int width) {
    for (int t = 0; t < tokens; t++) {
      double squares = 0;
      for (int k = 0; k < width; k++) {
        double v = target[t * width + k];
        squares += v * v;
      }
      float scale = (float) (1 / Math.sqrt(squares / width + 1e-12));
      for (int j = 0; j < in; j++) {
        x[t * in + j] *= scale;
      }
      for (int k = 0; k < width; k++) {
        e[t * width + k] *= scale;
      }
    }
  }

  /** Keeps a copy of one linear's input (and of the MLP's input, for a local target) during a block's forward pass. */
  private static final class Capture implements InputHook {
    private final String name;
    private final boolean wantsMlpInput;
    float[] input;
    float[] mlpInput;

    Capture(String name, DenseMlp local) {
      this.name = name;
      this.wantsMlpInput = local != null;
    }

    @Override
    public void accept(List<Linear> linears, float[] x, int tokens, int sequences) {
      Linear first = linears.get(0);
      if (first.expert().isPresent()) {
        return;
      }
      if (linears.size() == 1 && first.name().equals(name)) {
        input = java.util.Arrays.copyOf(x, tokens * (int) first.inFeatures());
      } else if (wantsMlpInput && first.name().equals(GATE_PROJ)) {
        mlpInput = java.util.Arrays.copyOf(x, tokens * (int) first.inFeatures());
      }
    }
  }

  /** The dense source block's SwiGLU MLP: the local target of a down_proj refit. */
  private record DenseMlp(float[] gate, float[] up, float[] down, int hidden, int intermediate, LinearAlgebra linalg) {
    static DenseMlp of(DecoderModel dense, int block, LinearAlgebra linalg) throws IOException {
      BlockWeights w = dense.loadBlock(block);
      Linear gate = linear(dense, block, GATE_PROJ);
      Linear up = linear(dense, block, UP_PROJ);
      Linear down = linear(dense, block, DOWN_PROJ);
      ValidationException.check(
          gate.biasName().isEmpty() && up.biasName().isEmpty() && down.biasName().isEmpty(),
          "Cannot refit block %d with a local target: its MLP has biases; use the stream target", block);
      return new DenseMlp(
          w.tensor(gate.tensorName()), w.tensor(up.tensorName()), w.tensor(down.tensorName()), (int) gate.inFeatures(), (int) gate.outFeatures(),
          linalg);
    }

    /** dense_down(silu(x gate^T) ⊙ (x up^T)) − kept W^T: the dense MLP's output minus the shrunk one's. */
    float[] error(float[] x, float[] keptInput, float[] keptDown, int tokens) {
      float[] g = new float[tokens * intermediate];
      float[] u = new float[tokens * intermediate];
      linalg.gemmTransposedB(tokens, intermediate, hidden, 1f, x, 0, hidden, gate, 0, hidden, 0f, g, 0, intermediate);
      linalg.gemmTransposedB(tokens, intermediate, hidden, 1f, x, 0, hidden, up, 0, hidden, 0f, u, 0, intermediate);
      for (int i = 0; i < g.length; i++) {
        g[i] = (float) (g[i] / (1 + Math.exp(-g[i]))) * u[i];
      }
      float[] error = new float[tokens * hidden];
      linalg.gemmTransposedB(tokens, hidden, intermediate, 1f, g, 0, intermediate, down, 0, intermediate, 0f, error, 0, hidden);
      int kept = keptDown.length / hidden;
      linalg.gemmTransposedB(tokens, hidden, kept, -1f, keptInput, 0, kept, keptDown, 0, kept, 1f, error, 0, hidden);
      return error;
    }
  }

  private static Linear linear(DecoderModel model, int block, String name) {
    for (Linear linear : model.layout().blocks().get(block).linears()) {
      if (linear.name().equals(name) && linear.expert().isEmpty()) {
        return linear;
      }
    }
    throw new ValidationException("Cannot repair block " + block + ": it has no " + name);
  }

  private static double meanNll(DecoderModel model, List<HiddenStates> states, List<int[][]> windows) throws IOException {
    if (windows.isEmpty()) {
      return Double.NaN;
    }
    double sum = 0;
    int count = 0;
    for (int b = 0; b < windows.size(); b++) {
      for (double nll : model.meanNll(states.get(b), windows.get(b))) {
        sum += nll;
        count++;
      }
    }
    return sum / count;
  }
}
