package dev.sparkprune.jobs.plan;

import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.tensorio.arch.Block;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The calibration plan of a model from its headers alone: which of each MoE block's routed experts
 * go together in one expert task, and every stage's estimated bytes per task and shuffled bytes.
 * One pure function ({@link #of}), shared by the jobs (which shard the blocks it says to shard)
 * and by the run plan that refuses a run before Spark starts.
 *
 * <p>Groups: a block's experts in index order, a new group whenever the next expert's bytes would
 * take the group past the budget (an expert over the budget alone is a group of its own), where an
 * expert's bytes are {@code W_e + S_e}: its float weights, 4 x (gate + up + down parameters; a
 * gpt-oss expert's slices with their biases), plus the statistics the method keeps for its two
 * input groups ({@link ExpertStatistics#bytes}: 16 x channels for Wanda's sums, + 8 x channels^2
 * for SparseGPT's X^T X in double), over H (gate/up input) and I (down input) channels. A block
 * whose experts make one group runs as today, in one task.
 *
 * <p>Per task, with H = hidden, k = top-k, E = experts, T = calibration tokens, T_c = tokens of a
 * chunk, c_P = chunks of the fullest calibration partition, L = ceil(log2 chunks) (the pairwise
 * fold keeps at most L + 1 partials of a key), X = the float scratch of one X^T X update:
 * <ul>
 *   <li>stage 1 (attention, per partition): W_attention + W_router + (L + 1) S_attention + X +
 *       c_P (2 x 4 T_c H states + 8 T_c k routing) + 4 T_c (sum of the attention linears' outputs + 2H);
 *   <li>stage 2 (expert group g): sum over g of (W_e + S_e) + (L + 1) max S_e + X + 4 H R_g
 *       (R_g = rows shipped to g: T k |g| / E expected under uniform routing, at most T min(k, |g|);
 *       with --moe-calibration all, T) + 4 r (3 I + 2 H) for the rows r of one expert and chunk;
 *   <li>stage 3 (combine, per partition): W_shared + (L + 1) S_shared + X + c_P (3 x 4 T_c H
 *       + 8 T_c k + 4 T_c k H returned outputs) + 4 T_c (3 I_shared + H);
 *   <li>unsharded: the whole block's W + (L + 1) S + X + c_P 2 x 4 T_c H + one chunk's working set.
 * </ul>
 * Shuffles: 4 H T k + 4 T k (routed rows and their indices; every token to every group, 4 H T G,
 * with --moe-calibration all), 4 H T k back, and sum of S_e of folded statistics.
 */
public final class ExpertPlan {
  private final PlanSettings settings;
  private final List<BlockPlan> blocks;

  private ExpertPlan(PlanSettings settings, List<BlockPlan> blocks) {
    this.settings = settings;
    this.blocks = List.copyOf(blocks);
  }

  /** The plan of every decoder block of {@code layout} (config: the archive's config.json). */
  public static ExpertPlan of(ModelLayout layout, ModelConfig config, PlanSettings settings) {
    Objects.requireNonNull(layout, "layout is null");
    Objects.requireNonNull(settings, "settings is null");
    Optional<MixtureOfExperts> moe = MixtureOfExperts.of(config);
    long hidden = config.requireInt("hidden_size");
    List<BlockPlan> blocks = new ArrayList<>();
    for (Block block : layout.blocks()) {
      boolean sparse = moe.isPresent() && moe.get().isSparse(block.index());
      blocks.add(new BlockSizes(block, sparse ? moe.get() : null, hidden, settings).plan());
    }
    return new ExpertPlan(settings, blocks);
  }

  /** The budget groups were cut by (--expert-task-mb in bytes, or the derived one). */
  public long budget() {
    return settings.budget();
  }

  /**
   * Refuses, in one line, a run no expert task of which can fit a task's share of the executor
   * heap: an --expert-task-mb over that share, or a routed expert (float weights and the
   * method's statistics: the least an expert task holds) over it. Checked before Spark starts;
   * otherwise the first expert task would die of OutOfMemoryError.
   */
  public void checkFits() {
    ExecutorShape executor = settings.executor();
    long task = executor.taskBytes();
    String share = String.format(Locale.ROOT, "a task has %s of heap (%s per executor / %d tasks)", size(task),
        size(executor.memoryBytes()), executor.cores());
    if (settings.expertTaskBytes() > task) {
      throw new ValidationException(String.format(Locale.ROOT, "Invalid --expert-task-mb %d: %s; set it to at most %d",
          settings.expertTaskBytes() >> 20, share, Math.max(1, task >> 20)));
    }
    for (BlockPlan block : blocks) {
      if (block.largestExpertBytes() > task) {
        throw new ValidationException(String.format(Locale.ROOT,
            "Cannot calibrate model.layers.%d: one routed expert with its statistics needs %s but %s; raise %s (%s) or run fewer "
                + "tasks per executor",
            block.block(), size(block.largestExpertBytes()), share, executor.setting(), executor.source()));
      }
    }
  }

  /** Bytes as a message shows them: exact under a MB, else whole MB (rounded down). */
  private static String size(long bytes) {
    return bytes < 1L << 20 ? String.format(Locale.ROOT, "%,d bytes", bytes) : String.format(Locale.ROOT, "%,d MB", bytes >> 20);
  }

  public List<BlockPlan> blocks() {
    return blocks;
  }

  public BlockPlan block(int block) {
    return blocks.get(block);
  }

  /** Whether block b runs sharded (its experts make more than one group). */
  public boolean sharded(int block) {
    return blocks.get(block).sharded();
  }

  /** The largest task of any block's calibration. */
  public long maxTaskBytes() {
    return blocks.stream().mapToLong(BlockPlan::maxTaskBytes).max().orElse(0);
  }

  /**
   * Cuts experts 0 .. n-1 of the given bytes into contiguous groups of at most {@code budget}
   * bytes each, in index order (an expert over the budget is a group of its own).
   */
  public static List<ExpertGroup> groups(long[] expertBytes, long budget) {
    if (budget <= 0) {
      throw new IllegalArgumentException("Invalid expert task budget: " + budget);
    }
    List<ExpertGroup> groups = new ArrayList<>();
    int first = 0;
    long bytes = 0;
    for (int e = 0; e < expertBytes.length; e++) {
      if (e > first && bytes + expertBytes[e] > budget) {
        groups.add(new ExpertGroup(groups.size(), first, e, bytes));
        first = e;
        bytes = 0;
      }
      bytes += expertBytes[e];
    }
    if (expertBytes.length > 0) {
      groups.add(new ExpertGroup(groups.size(), first, expertBytes.length, bytes));
    }
    return groups;
  }

  /** One block's sizes, from its linears (and, for fused experts, the MoE settings). */
  private static final class BlockSizes {
    private final Block block;
    private final MixtureOfExperts moe;
    private final long hidden;
    private final PlanSettings settings;
    private final ExpertStatistics statistics;
    /** Parameters and output widths of the attention linears (and router), the shared expert's, each routed expert's. */
    private long attentionParameters;
    private long attentionOutputs;
    private long sharedParameters;
    private long sharedIntermediate;
    /** Input channels of each input group outside the routed experts, by role. */
    private final Map<String, Long> attentionInputs = new TreeMap<>();
    private final Map<String, Long> sharedInputs = new TreeMap<>();

    BlockSizes(Block block, MixtureOfExperts moe, long hidden, PlanSettings settings) {
      this.block = block;
      this.moe = moe;
      this.hidden = hidden;
      this.settings = settings;
      this.statistics = settings.statistics();
      for (Linear linear : block.linears()) {
        if (linear.isRoutedExpert()) {
          continue;
        }
        if (linear.expert().isPresent()) {
          sharedParameters += linear.parameters();
          sharedIntermediate = Math.max(sharedIntermediate, width(linear));
          sharedInputs.put(linear.inputGroup(), linear.inFeatures());
        } else {
          attentionParameters += linear.parameters();
          attentionOutputs += linear.outFeatures();
          attentionInputs.put(linear.inputGroup(), linear.inFeatures());
        }
      }
    }

    BlockPlan plan() {
      CalibrationShape calibration = settings.calibration();
      long chunkTokens = calibration.chunkTokens();
      long partitionChunks = calibration.chunksPerPartition();
      long partials = calibration.foldLevels() + 1L;
      long state = 4 * chunkTokens * hidden;
      long attentionWeights = 4 * attentionParameters + (moe == null ? 0 : 4 * (long) moe.experts() * (hidden + 1));
      long attentionStatistics = statistics(attentionInputs);
      long sharedWeights = 4 * sharedParameters;
      long sharedStatistics = statistics(sharedInputs);
      long attentionWorking = 4 * chunkTokens * (attentionOutputs + 2 * hidden);
      long scratch = statistics.scratchBytes(Math.max(maxInput(attentionInputs), maxInput(sharedInputs)));
      if (moe == null) {
        long whole = attentionWeights + sharedWeights + partials * (attentionStatistics + sharedStatistics) + scratch
            + partitionChunks * 2 * state + attentionWorking;
        return new BlockPlan(block.index(), false, List.of(), whole, 0, 0, 0, 0, 0, 0, 0);
      }
      int experts = moe.experts();
      long k = moe.topK();
      long[] weights = new long[experts];
      long[] expertStatistics = new long[experts];
      long[] budgeted = new long[experts];
      long intermediate = expertWidths(weights, expertStatistics);
      long maxExpertStatistics = 0;
      long largestExpert = 0;
      long expertWeights = 0;
      long allExpertStatistics = 0;
      for (int e = 0; e < experts; e++) {
        budgeted[e] = weights[e] + expertStatistics[e];
        maxExpertStatistics = Math.max(maxExpertStatistics, expertStatistics[e]);
        largestExpert = Math.max(largestExpert, budgeted[e]);
        expertWeights += weights[e];
        allExpertStatistics += expertStatistics[e];
      }
      List<ExpertGroup> groups = groups(budgeted, settings.budget());
      long expertScratch = statistics.scratchBytes(Math.max(hidden, intermediate));
      long routing = 8 * chunkTokens * k;
      boolean all = settings.inputs() == InputHook.ExpertInputs.ALL;
      long tokens = calibration.tokens();
      long rowsPerExpertChunk = all ? chunkTokens : ceilDiv(chunkTokens * k, experts);
      long expertWorking = 4 * rowsPerExpertChunk * (3 * intermediate + 2 * hidden);

      long whole = attentionWeights + sharedWeights + expertWeights
          + partials * (attentionStatistics + sharedStatistics + allExpertStatistics) + Math.max(scratch, expertScratch)
          + partitionChunks * 2 * state + attentionWorking + state + expertWorking;
      long attention = attentionWeights + partials * attentionStatistics + scratch + partitionChunks * (2 * state + routing) + attentionWorking;
      long expertTask = 0;
      for (ExpertGroup group : groups) {
        long rows = all ? tokens : Math.min(ceilDiv(tokens * k * group.size(), experts), tokens * Math.min(k, group.size()));
        expertTask = Math.max(expertTask, group.bytes() + partials * maxExpertStatistics + expertScratch + 4 * hidden * rows + expertWorking);
      }
      long returned = 4 * chunkTokens * k * hidden;
      long combine = sharedWeights + 4 * hidden + partials * sharedStatistics + scratch + partitionChunks * (3 * state + routing + returned)
          + 4 * chunkTokens * (3 * sharedIntermediate + hidden);
      long dispatch = all ? 4 * hidden * tokens * groups.size() + 4 * tokens * k : 4 * hidden * tokens * k + 4 * tokens * k;
      return new BlockPlan(block.index(), true, groups, whole, attention, expertTask, combine, dispatch, 4 * hidden * tokens * k,
          allExpertStatistics, largestExpert);
    }

    /** Fills each expert's float weight bytes and statistics bytes; returns the experts' intermediate width. */
    private long expertWidths(long[] weights, long[] expertStatistics) {
      Map<Integer, Map<String, Long>> inputs = new TreeMap<>();
      long intermediate = 0;
      for (Linear linear : block.linears()) {
        if (linear.isRoutedExpert()) {
          int e = linear.expert().get().index();
          weights[e] += 4 * linear.parameters();
          if (linear.fusedSlice().isPresent()) {
            // gpt-oss: the slice's bias travels with it (gate and up halves of gate_up_proj_bias, down_proj_bias).
            weights[e] += 4 * linear.outFeatures();
          }
          inputs.computeIfAbsent(e, key -> new TreeMap<>()).put(linear.inputGroup(), linear.inFeatures());
          intermediate = Math.max(intermediate, width(linear));
        }
      }
      if (inputs.isEmpty()) {
        // Fused experts without slices as linears: gate_up [H x 2I] and down [I x H] slices with their biases.
        intermediate = moe.expertIntermediate();
        for (int e = 0; e < weights.length; e++) {
          weights[e] = 4 * (hidden * 2 * intermediate + 2 * intermediate + intermediate * hidden + hidden);
          expertStatistics[e] = statistics.bytes(hidden) + statistics.bytes(intermediate);
        }
        return intermediate;
      }
      inputs.forEach((e, groups) -> expertStatistics[e] = statistics(groups));
      return intermediate;
    }

    /** An MLP linear's intermediate width: the side that is not the hidden size. */
    private long width(Linear linear) {
      return linear.inFeatures() == hidden ? linear.outFeatures() : linear.inFeatures();
    }

    private long statistics(Map<String, Long> inputs) {
      long bytes = 0;
      for (long channels : inputs.values()) {
        bytes += statistics.bytes(channels);
      }
      return bytes;
    }

    private static long maxInput(Map<String, Long> inputs) {
      return inputs.values().stream().mapToLong(Long::longValue).max().orElse(0);
    }

    private static long ceilDiv(long a, long b) {
      return (a + b - 1) / b;
    }
  }
}
