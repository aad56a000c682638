package dev.sparkprune.scoring.repair;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.shrink.KeptBlock;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Training-free repair of a shrunk model, block by block as SparseGPT prunes (each block fitted
 * on the inputs of the already repaired blocks before it), in one process: the reference the
 * distributed job must equal, and what the size-budget search scores candidates with.
 *
 * <p>Two streams run side by side over the calibration chunks: the dense source model's and the
 * shrunk model's (opened from the unrepaired shrunk archive). For each kept block, in order:
 *
 * <ol>
 *   <li>the target is the dense stream at the input of the next kept block (for a block before
 *       a dropped run, under {@link RepairSettings.DepthFit#PRECEDING_COLUMNS} or
 *       {@code PRECEDING_MAP}) or at the output of the same source block;
 *   <li>if its KV groups were cut (or {@link RepairSettings.Scope#ALL}), o_proj is refitted
 *       ({@link LinearRefit#columns}) from the sums of its input and E = target − block output;
 *   <li>if its MLP channels were cut, or it takes a dropped run's change (or scope ALL), the
 *       block runs again with the new o_proj and down_proj is refitted the same way
 *       ({@link LinearRefit#outputMap} for a ReplaceMe map), E = target − block output, or
 *       with {@link RepairSettings.Target#LOCAL} E = the dense MLP on the same MLP input minus
 *       the shrunk one;
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
 * <p>Memory: per calibration chunk the dense and shrunk hidden states and the target (3 ×
 * tokens × hidden floats), one captured linear input per chunk while a block's sums are
 * gathered, one dense and one shrunk block's weights, and the equations of one linear
 * (in² + in × out doubles).
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

    int sourceBlocks = plan.source().blocks();
    int densePosition = 0;
    Map<String, float[]> tensors = new LinkedHashMap<>();
    List<BlockRefit> refits = new ArrayList<>();
    for (int i = 0; i < plan.blocks().size(); i++) {
      KeptBlock kept = plan.blocks().get(i);
      int source = kept.source();
      int next = i + 1 < plan.blocks().size() ? plan.blocks().get(i + 1).source() : sourceBlocks;
      int previous = i > 0 ? plan.blocks().get(i - 1).source() : -1;
      boolean precedesDrop = next > source + 1;
      boolean followsDrop = source > previous + 1;
      boolean preceding = settings.depth() != RepairSettings.DepthFit.NEXT;
      boolean takesDepth = preceding ? precedesDrop : followsDrop;
      int targetPoint = precedesDrop && preceding ? next : source + 1;
      for (; densePosition < targetPoint; densePosition++) {
        BlockWeights weights = dense.loadBlock(densePosition);
        for (int c = 0; c < denseStream.size(); c++) {
          denseStream.set(c, dense.runBlock(weights, denseStream.get(c), InputHook.NONE));
        }
      }
      List<HiddenStates> target = denseStream;

      BlockWeights original = shrunk.loadBlock(i);
      BlockWeights weights = original;
      Linear oProj = linear(shrunk, i, O_PROJ);
      Linear downProj = plan.source().isSparse(source) ? null : linear(shrunk, i, DOWN_PROJ);
      boolean all = settings.scope() == RepairSettings.Scope.ALL;
      boolean headsCut = kept.kvGroups().length < plan.source().kvHeads();
      boolean channelsCut = downProj != null && kept.mlpChannels().length < plan.source().intermediate();
      boolean refitDown = downProj != null && (all || channelsCut || takesDepth);
      // A sparse block before a dropped run takes the run's change in its o_proj.
      boolean refitO = all || headsCut || (takesDepth && downProj == null);

      if (refitO) {
        LinearEquations equations = collect(shrunk, weights, stream, target, oProj, null, linalg);
        LinearRefit.Refit refit = LinearRefit.columns(oProj.tensorName(), weights.tensor(oProj.tensorName()), equations, settings.damping(), linalg);
        weights = weights.withTensor(oProj.tensorName(), refit.weights());
        tensors.put(oProj.tensorName(), refit.weights());
        refits.add(new BlockRefit(i, source, oProj.tensorName(), "columns", refit.errorBefore(), refit.errorAfter(), equations.tokens(), refit.damping()));
      }
      if (refitDown) {
        boolean local = settings.target() == RepairSettings.Target.LOCAL && !takesDepth;
        DenseMlp mlp = local ? DenseMlp.of(dense, source, linalg) : null;
        LinearEquations equations = collect(shrunk, weights, stream, target, downProj, mlp, linalg);
        boolean map = takesDepth && settings.depth() == RepairSettings.DepthFit.PRECEDING_MAP;
        float[] current = weights.tensor(downProj.tensorName());
        LinearRefit.Refit refit = map
            ? LinearRefit.outputMap(downProj.tensorName(), current, equations, settings.damping(), linalg)
            : LinearRefit.columns(downProj.tensorName(), current, equations, settings.damping(), linalg);
        weights = weights.withTensor(downProj.tensorName(), refit.weights());
        tensors.put(downProj.tensorName(), refit.weights());
        refits.add(new BlockRefit(
            i, source, downProj.tensorName(), map ? "map" : "columns", refit.errorBefore(), refit.errorAfter(), equations.tokens(), refit.damping()));
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

  /** Sums of one linear's input and the error its refit should remove, over every chunk in order. */
  private static LinearEquations collect(
      DecoderModel shrunk, BlockWeights weights, List<HiddenStates> stream, List<HiddenStates> target, Linear linear, DenseMlp local,
      LinearAlgebra linalg) {
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
      equations.add(capture.input, error, input.tokens(), input.sequences(), linalg);
    }
    return equations;
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
