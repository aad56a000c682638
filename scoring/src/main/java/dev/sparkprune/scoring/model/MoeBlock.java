package dev.sparkprune.scoring.model;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.tensorio.arch.Block;
import dev.sparkprune.tensorio.arch.FusedExpertSlice;
import dev.sparkprune.tensorio.arch.GptOssArchitecture;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The sparse MLP of one block, computed in four steps that can be run apart (expert-parallel
 * calibration ships each expert's rows to the task holding it):
 *
 * <ol>
 *   <li>{@link #route}: the router's logits to each token's k experts and weights ({@link ExpertRouting});
 *   <li>{@link ExpertRouting#rows}: each expert's token list, gathered with {@link ExpertRouting#gather};
 *   <li>{@link #expert}: expert e as a function of its rows ({@link RoutedExpert}), holding its weights only;
 *   <li>{@link ExpertCombiner}: the outputs times their routing weights, summed in ascending expert order;
 * </ol>
 *
 * then {@link #addShared} adds the shared expert (every token). {@link #run} is all of it in one
 * process, as the forward pass runs it; computed group by group and combined in the same order,
 * the result is the same bits. A routed expert computes only its rows, so a token's output
 * depends on no other expert.
 */
public final class MoeBlock {
  private final LinearAlgebra linalg;
  private final MixtureOfExperts moe;
  private final String blockPrefix;
  private final Map<String, Linear> linears;
  private final int hidden;

  private MoeBlock(LinearAlgebra linalg, MixtureOfExperts moe, String blockPrefix, Map<String, Linear> linears, int hidden) {
    this.linalg = linalg;
    this.moe = moe;
    this.blockPrefix = blockPrefix;
    this.linears = linears;
    this.hidden = hidden;
  }

  /** The sparse MLP of {@code block}, whose tensors are named {@code blockPrefix + ...}. */
  public static MoeBlock of(LinearAlgebra linalg, MixtureOfExperts moe, Block block, String blockPrefix, int hidden) {
    Map<String, Linear> byName = new HashMap<>();
    block.linears().forEach(linear -> byName.put(linear.name(), linear));
    return new MoeBlock(linalg, moe, blockPrefix, byName, hidden);
  }

  public MixtureOfExperts settings() {
    return moe;
  }

  /** Step 1: routes the MLP input x [tokens x hidden]; needs the router's tensors only. */
  public ExpertRouting route(BlockWeights w, float[] x, int tokens) {
    float[] bias = moe.routerBias().map(name -> w.tensor(blockPrefix + name)).orElse(null);
    float[] logits = Layers.linear(linalg, x, tokens, hidden, w.tensor(blockPrefix + moe.router() + ".weight"), moe.experts(), bias);
    float[] correction = moe.correctionBias().map(name -> w.tensor(blockPrefix + name)).orElse(new float[0]);
    return ExpertRouting.route(moe, logits, correction, tokens);
  }

  /**
   * Step 3's function for expert e, from {@code w}, which needs to hold only that expert's
   * tensors (for fused experts, the whole fused tensors: see {@link #fusedExpert} to build one
   * from slices read alone).
   */
  public RoutedExpert expert(BlockWeights w, int expert) {
    if (moe.fused()) {
      int intermediate = moe.expertIntermediate();
      int gateUpSize = hidden * 2 * intermediate;
      int downSize = intermediate * hidden;
      return fusedExpert(
          expert,
          slice(w.tensor(blockPrefix + moe.fusedGateUp()), expert, gateUpSize),
          slice(w.tensor(blockPrefix + moe.fusedGateUp() + "_bias"), expert, 2 * intermediate),
          slice(w.tensor(blockPrefix + moe.fusedDown()), expert, downSize),
          slice(w.tensor(blockPrefix + moe.fusedDown() + "_bias"), expert, hidden),
          hidden,
          intermediate,
          fusedLinears(expert));
    }
    return new SwiGluExpert(
        expert, linears.get(moe.expertLinear(expert, 0)), linears.get(moe.expertLinear(expert, 1)), linears.get(moe.expertLinear(expert, 2)), w);
  }

  /**
   * A gpt-oss expert from its own rows of the fused tensors: gate_up [hidden x 2 intermediate],
   * its bias [2 intermediate], down [intermediate x hidden], its bias [hidden].
   */
  public static RoutedExpert fusedExpert(
      int expert, float[] gateUp, float[] gateUpBias, float[] down, float[] downBias, int hidden, int intermediate) {
    return fusedExpert(expert, gateUp, gateUpBias, down, downBias, hidden, intermediate, List.of());
  }

  /** {@link #fusedExpert} whose gate, up and down linears ({@code linears}, in that order) the hook sees. */
  static RoutedExpert fusedExpert(
      int expert, float[] gateUp, float[] gateUpBias, float[] down, float[] downBias, int hidden, int intermediate, List<Linear> linears) {
    return new GptOssExpert(
        expert, gateUp, gateUpBias, down, downBias, hidden, intermediate, (float) GptOssArchitecture.SWIGLU_ALPHA,
        (float) GptOssArchitecture.SWIGLU_LIMIT, linears);
  }

  /** A fused expert's gate, up and down as the layout's linears; empty where the layout lists none. */
  private List<Linear> fusedLinears(int expert) {
    List<Linear> slices = new java.util.ArrayList<>();
    for (int p = 0; p < 3; p++) {
      Linear linear = linears.get(moe.expertLinear(expert, p));
      if (linear == null) {
        return List.of();
      }
      slices.add(linear);
    }
    return slices;
  }

  /**
   * Step 3's function for expert e from weights holding that expert alone ({@link
   * DecoderModel#loadExpert}: its own tensors, or for fused experts its slices under the fused
   * names): the same function as {@link #expert} on the whole block's weights.
   */
  public RoutedExpert expertAlone(BlockWeights w, int expert) {
    if (moe.fused()) {
      return fusedExpert(
          expert, w.tensor(alone(moe.fusedGateUp(), expert)), w.tensor(alone(moe.fusedGateUp() + "_bias", expert)),
          w.tensor(alone(moe.fusedDown(), expert)), w.tensor(alone(moe.fusedDown() + "_bias", expert)), hidden, moe.expertIntermediate(),
          fusedLinears(expert));
    }
    return expert(w, expert);
  }

  /** Where {@link #run} takes each routed expert from: the block's weights, or read one at a time. */
  @FunctionalInterface
  public interface ExpertSource {
    RoutedExpert expert(int expert) throws IOException;
  }

  /** The name of expert e's slice of a fused tensor in weights holding that expert alone. */
  private String alone(String fused, int expert) {
    return FusedExpertSlice.expertSliceName(blockPrefix + fused, expert);
  }

  private static float[] slice(float[] fused, int expert, int size) {
    return Arrays.copyOfRange(fused, expert * size, (expert + 1) * size);
  }

  /**
   * The whole sparse MLP on its normed input x [tokens x hidden]: the four steps in one process,
   * then the shared expert. The hook sees each expert's linear inputs (see {@link InputHook} for
   * which rows) and each routed expert's output.
   */
  public float[] run(BlockWeights w, float[] x, int tokens, int sequences, InputHook hook) {
    try {
      return run(w, x, tokens, sequences, hook, e -> expert(w, e));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * {@link #run} with the routed experts from {@code experts}, taken one at a time in ascending
   * order: read alone ({@link #expertAlone}), a block's experts need never be in memory together.
   * {@code w} holds the router and the shared expert. The same bits as {@link #run}.
   */
  public float[] run(BlockWeights w, float[] x, int tokens, int sequences, InputHook hook, ExpertSource experts) throws IOException {
    ExpertRouting routing = route(w, x, tokens);
    ExpertCombiner combiner = new ExpertCombiner(routing, hidden);
    boolean allTokens = hook.expertInputs() == InputHook.ExpertInputs.ALL;
    for (int e = 0; e < moe.experts(); e++) {
      RoutedExpert expert = experts.expert(e);
      if (allTokens) {
        // Statistics over every token; the output below still uses only the routed rows.
        expert.observeAllTokens(linalg, x, tokens, sequences, hook);
      }
      int[] rows = routing.rows(e);
      float[] output = expert.apply(linalg, ExpertRouting.gather(x, rows, hidden), rows.length, sequences, allTokens ? InputHook.NONE : hook);
      if (rows.length > 0) {
        hook.acceptExpertOutput(e, rows, routing.weights(e), output, hidden);
        combiner.add(e, output);
      }
    }
    float[] out = combiner.result();
    addShared(w, x, tokens, sequences, hook, out);
    return out;
  }

  /**
   * Adds the shared expert's output on every token to {@code out}: as it is (DeepSeek-V3,
   * GLM-4.5) or times sigmoid(shared_expert_gate x) (Qwen2-MoE); nothing without one.
   */
  public void addShared(BlockWeights w, float[] x, int tokens, int sequences, InputHook hook, float[] out) {
    if (!moe.hasSharedExpert()) {
      return;
    }
    Linear gate = linears.get(moe.sharedLinear(0));
    Linear up = linears.get(moe.sharedLinear(1));
    Linear down = linears.get(moe.sharedLinear(2));
    hook.accept(List.of(gate, up), x, tokens, sequences);
    float[] inner = Fused.swiGlu(linalg, w, gate, up, x, tokens);
    hook.accept(List.of(down), inner, tokens, sequences);
    float[] y = Fused.apply(linalg, w, down, inner, tokens);
    if (!moe.hasSharedExpertGate()) {
      Layers.addInPlace(out, y);
      return;
    }
    float[] scale = Layers.linear(linalg, x, tokens, hidden, w.tensor(blockPrefix + moe.sharedGate() + ".weight"), 1, null);
    for (int t = 0; t < tokens; t++) {
      float sigmoid = (float) (1.0 / (1.0 + Math.exp(-scale[t])));
      for (int c = 0; c < hidden; c++) {
        out[t * hidden + c] += sigmoid * y[t * hidden + c];
      }
    }
  }
}
