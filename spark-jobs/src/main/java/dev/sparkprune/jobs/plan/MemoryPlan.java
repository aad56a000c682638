package dev.sparkprune.jobs.plan;

import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Block;
import dev.sparkprune.tensorio.arch.Blueprint;
import dev.sparkprune.tensorio.arch.ExpectedTensor;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.arch.TensorRole;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.archive.ModelConfig;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.ToLongFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a prune run holds per task and per executor, block by block, from headers and settings
 * alone (no weight read): the plan {@code inspect --plan} prints and the check that refuses a run
 * before Spark starts. Per block b (README, "The memory plan"):
 * <ul>
 *   <li>stored bytes: its tensors as the archive stores them (FP8 codes and scales, MXFP4 blocks);
 *   <li>float bytes F_b = 4 x its logical parameters: what the executor's block cache holds when a
 *       calibration task decodes the block (all experts: today's path; ExpertPlan's expert groups
 *       are the integration point that replaces this term);
 *   <li>a calibration task: F_b + activations 4 x T x (2 hidden + widest output) for its chunk of
 *       T = ceil(nsamples / 16) x seqlen tokens + statistics 2 x S_b (a partial being folded and
 *       one shipped), S_b = the block's input groups' statistics: in x in x 8 bytes each for a
 *       Hessian method (SparseGPT, ADMM), in x 8 for Wanda and RIA, none for magnitude;
 *   <li>an executor in calibration: 2 F_b (the pruned block it advances through and the dense
 *       block it calibrates) + cores x (activations + 2 S_b);
 *   <li>scoring: linears grouped by float bytes into tasks of --scoring-task-mb; a task holds one
 *       linear at a time: 3 float copies (source, method output, staged) + mask bits + its
 *       statistics; an executor holds cores such tasks;
 *   <li>shuffle: the statistics partials, S_b per calibration partition.
 * </ul>
 * These are estimates of the large arrays, not of every object; the JVM and Spark need their own
 * margin ({@link ExecutorShape#usableBytes}).
 */
public final class MemoryPlan {
  private static final Pattern BLOCK = Pattern.compile("(?:^|\\.)layers\\.(\\d+)\\.");

  /** The run's settings the plan reads. */
  public record Settings(int nsamples, int seqlen, PruningMethod method, long scoringTaskBytes) {
    long chunkTokens() {
      return (long) CalibrationShape.chunkSize(nsamples) * seqlen;
    }

    int chunks() {
      return (nsamples + CalibrationShape.chunkSize(nsamples) - 1) / CalibrationShape.chunkSize(nsamples);
    }
  }

  /** A tensor of a block as the plan counts it. */
  public record PlanTensor(String name, int block, long parameters, long storedBytes) {}

  /** One block's figures; bytes per task, per executor and per block. */
  public record BlockPlan(
      int block,
      long storedBytes,
      long floatBytes,
      long activationBytes,
      long statisticsBytes,
      long calibrationTaskBytes,
      long calibrationExecutorBytes,
      int scoringTasks,
      long scoringTaskBytes,
      String largestLinear,
      long shuffleBytes) {}

  private final Settings settings;
  private final ExecutorShape executor;
  private final List<BlockPlan> blocks;

  private MemoryPlan(Settings settings, ExecutorShape executor, List<BlockPlan> blocks) {
    this.settings = settings;
    this.executor = executor;
    this.blocks = List.copyOf(blocks);
  }

  /** The plan of an archive from its headers: stored bytes as the headers give them. */
  public static MemoryPlan of(ModelArchive archive, ModelLayout layout, Settings settings, ExecutorShape executor) {
    List<PlanTensor> tensors = new ArrayList<>();
    for (ArchiveTensor tensor : archive.tensors()) {
      blockOf(tensor.name(), layout.blocks().size())
          .ifPresent(block -> tensors.add(new PlanTensor(tensor.name(), block, tensor.numel(), tensor.storedBytes())));
    }
    return of(layout.blocks(), tensors, settings, executor);
  }

  /**
   * The plan of a model described by its expected tensors only (a config.json's shapes, no
   * archive): {@code storedBytes} gives each tensor's bytes in the release's format.
   */
  public static MemoryPlan of(
      List<Block> layoutBlocks, List<ExpectedTensor> expected, ToLongFunction<ExpectedTensor> storedBytes, Settings settings,
      ExecutorShape executor) {
    List<PlanTensor> tensors = new ArrayList<>();
    for (ExpectedTensor tensor : expected) {
      long parameters = 1;
      for (long dim : tensor.shape()) {
        parameters *= dim;
      }
      long count = parameters;
      blockOf(tensor.name(), layoutBlocks.size())
          .ifPresent(block -> tensors.add(new PlanTensor(tensor.name(), block, count, storedBytes.applyAsLong(tensor))));
    }
    return of(layoutBlocks, tensors, settings, executor);
  }

  /**
   * How a release stores a model's tensors, for a plan from config.json alone: every tensor BF16
   * except the F32 {@code e_score_correction_bias}; FP8 stores each linear in E4M3 with F32
   * scales per 128x128 block; MXFP4 each fused expert tensor as E2M1 pairs with one E8M0 byte per
   * 32 values. These are the layouts of the official checkpoints (and of the fixtures).
   */
  public enum Release {
    BF16,
    FP8,
    MXFP4;

    public long storedBytes(ExpectedTensor tensor) {
      long[] shape = tensor.shape();
      long parameters = 1;
      for (long dim : shape) {
        parameters *= dim;
      }
      if (this == FP8 && tensor.role() == TensorRole.LINEAR && shape.length == 2) {
        return parameters + 4 * ((shape[0] + 127) / 128) * ((shape[1] + 127) / 128);
      }
      if (this == MXFP4 && tensor.role() == TensorRole.EXPERTS) {
        return parameters / 2 + parameters / 32;
      }
      return (tensor.name().endsWith("e_score_correction_bias") ? 4 : 2) * parameters;
    }
  }

  /** The plan of a model from its config.json alone (no archive: README's plan table), stored as {@code release} stores it. */
  public static MemoryPlan of(ModelConfig config, Release release, Settings settings, ExecutorShape executor) {
    Blueprint blueprint = Architectures.canonicalBlueprint(config);
    List<List<Linear>> byBlock = new ArrayList<>();
    for (int b = 0; b < blueprint.blockCount(); b++) {
      byBlock.add(new ArrayList<>());
    }
    for (Linear linear : blueprint.linears()) {
      byBlock.get(linear.block()).add(linear);
    }
    List<Block> blocks = new ArrayList<>();
    for (int b = 0; b < byBlock.size(); b++) {
      blocks.add(new Block(b, byBlock.get(b)));
    }
    return of(blocks, blueprint.tensors(), release::storedBytes, settings, executor);
  }

  static MemoryPlan of(List<Block> layoutBlocks, List<PlanTensor> tensors, Settings settings, ExecutorShape executor) {
    long[] stored = new long[layoutBlocks.size()];
    long[] parameters = new long[layoutBlocks.size()];
    for (PlanTensor tensor : tensors) {
      stored[tensor.block()] += tensor.storedBytes();
      parameters[tensor.block()] += tensor.parameters();
    }
    CalibrationStatistics.HessianStorage hessian = settings.method().hessianStorage();
    boolean calibrated = settings.method().needsCalibration() || hessian != CalibrationStatistics.HessianStorage.NONE;
    int partitions = Math.min(settings.chunks(), executor.cores() * Math.max(1, executor.executors()));
    List<BlockPlan> plans = new ArrayList<>();
    for (Block block : layoutBlocks) {
      int b = block.index();
      List<Linear> linears = block.linears();
      long floatBytes = 4 * parameters[b];
      long hidden = linears.isEmpty() ? 0 : linears.get(0).inFeatures();
      long widest = 0;
      Map<String, Long> groups = new LinkedHashMap<>();
      for (Linear linear : linears) {
        widest = Math.max(widest, linear.outFeatures());
        groups.put(linear.inputGroup(), linear.inFeatures());
      }
      long statistics = 0;
      for (long in : groups.values()) {
        statistics += statisticsBytes(in, hessian);
      }
      long activations = calibrated ? 4 * settings.chunkTokens() * (2 * hidden + widest) : 0;
      long statisticsHeld = calibrated ? 2 * statistics : 0;
      long taskBytes = calibrated ? floatBytes + activations + statisticsHeld : 0;
      long executorBytes = calibrated ? 2 * floatBytes + executor.cores() * (activations + statisticsHeld) : 0;
      int scoringTasks = 0;
      long groupBytes = 0;
      long scoringTask = 0;
      String largest = "";
      for (Linear linear : linears) {
        long weights = 4 * linear.parameters();
        groupBytes += weights;
        if (groupBytes >= settings.scoringTaskBytes()) {
          scoringTasks++;
          groupBytes = 0;
        }
        long held = 3 * weights + (linear.parameters() + 7) / 8 + (calibrated ? statisticsBytes(linear.inFeatures(), hessian) : 0);
        if (held > scoringTask) {
          scoringTask = held;
          largest = linear.tensorName();
        }
      }
      if (groupBytes > 0) {
        scoringTasks++;
      }
      plans.add(new BlockPlan(b, stored[b], floatBytes, activations, calibrated ? statistics : 0, taskBytes, executorBytes, scoringTasks,
          scoringTask, largest, calibrated ? statistics * partitions : 0));
    }
    return new MemoryPlan(settings, executor, plans);
  }

  private static long statisticsBytes(long in, CalibrationStatistics.HessianStorage hessian) {
    return hessian == CalibrationStatistics.HessianStorage.NONE ? 8 * in : 8 * in * in;
  }

  /** The block index of a tensor named {@code ...layers.<b>....}, if it is one of the {@code blocks} decoder blocks (MTP layers are not). */
  static java.util.Optional<Integer> blockOf(String name, int blocks) {
    Matcher matcher = BLOCK.matcher(name);
    if (!matcher.find()) {
      return java.util.Optional.empty();
    }
    int block = Integer.parseInt(matcher.group(1));
    return block < blocks ? java.util.Optional.of(block) : java.util.Optional.empty();
  }

  public Settings settings() {
    return settings;
  }

  public ExecutorShape executor() {
    return executor;
  }

  public List<BlockPlan> blocks() {
    return blocks;
  }

  /**
   * Refuses, with one line, a run whose plan does not fit one executor: the first block whose
   * calibration needs more than {@link ExecutorShape#usableBytes}, else the first whose
   * scoring tasks (cores at once) do. {@code action} starts the message: "Cannot prune X".
   */
  public void checkFits(String action) {
    checkFits(action, block -> false);
  }

  /**
   * As {@link #checkFits(String)}, leaving the calibration of the blocks {@code expertParallel}
   * names to the expert plan ({@code jobs.plan.ExpertPlan}): their tasks never hold the block whole.
   */
  public void checkFits(String action, java.util.function.IntPredicate expertParallel) {
    checkCalibrationFits(action, expertParallel);
    checkScoringFits(action);
  }

  /**
   * The calibration half of {@link #checkFits(String, java.util.function.IntPredicate)}: what a
   * job that runs blocks through calibration without scoring them (shrink) must fit.
   */
  public void checkCalibrationFits(String action, java.util.function.IntPredicate expertParallel) {
    long usable = executor.usableBytes();
    for (BlockPlan block : blocks) {
      if (!expertParallel.test(block.block()) && block.calibrationExecutorBytes() > usable) {
        throw new ValidationException(String.format(Locale.ROOT,
            "%s: block %d needs about %s per executor in calibration (2 blocks of %s decoded as float + %d task(s) of %s activations"
                + " and statistics), more than the %s an executor leaves (%s); raise %s, lower --nsamples or --seqlen, or see"
                + " 'sparkprune inspect --plan'",
            action, block.block(), gib(block.calibrationExecutorBytes()), gib(block.floatBytes()), executor.cores(),
            gib(block.activationBytes() + 2 * block.statisticsBytes()), gib(usable), executor.source(), executor.setting()));
      }
    }
  }

  /** The scoring half of {@link #checkFits(String, java.util.function.IntPredicate)}. */
  public void checkScoringFits(String action) {
    long usable = executor.usableBytes();
    for (BlockPlan block : blocks) {
      long needed = executor.cores() * block.scoringTaskBytes();
      if (needed > usable) {
        throw new ValidationException(String.format(Locale.ROOT,
            "%s: block %d needs about %s per executor in scoring (%d task(s) holding %s for %s), more than the %s an executor"
                + " leaves (%s); raise %s or run fewer tasks per executor, or see 'sparkprune inspect --plan'",
            action, block.block(), gib(needed), executor.cores(), gib(block.scoringTaskBytes()), block.largestLinear(), gib(usable),
            executor.source(), executor.setting()));
      }
    }
  }

  /** Bytes in GiB with three significant digits, as messages and the plan print them. */
  public static String gib(long bytes) {
    double value = bytes / (double) (1L << 30);
    return String.format(Locale.ROOT, value >= 100 ? "%.0f GiB" : value >= 10 ? "%.1f GiB" : "%.3g GiB", value);
  }
}
