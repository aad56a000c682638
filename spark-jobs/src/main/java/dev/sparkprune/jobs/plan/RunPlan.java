package dev.sparkprune.jobs.plan;

import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Block;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.function.IntPredicate;

/**
 * The one plan of a run, computed before Spark starts from the archive's headers and the
 * {@link ExecutorShape}, as stages checked in the order the run meets them:
 * <ol>
 *   <li>calibration cache ({@link CalibrationMemory}): the sampled windows' hidden states, in all
 *       and per calibration partition, and a task's activations (runs that sample text);
 *   <li>expert groups ({@link ExpertPlan}): which MoE blocks run expert-parallel, a routed
 *       expert and the --expert-task-mb budget against a task's heap, and per sharded block the
 *       attention, expert-group (experts + routed-token states) and combine tasks' bytes;
 *   <li>blocks ({@link MemoryPlan}): every block not sharded held as float in calibration (two
 *       per executor: the block cache), then the scoring tasks (prune only);
 *   <li>in-process evaluation (eval --text): the largest block as float with one batch's
 *       activations and logits, in this JVM.
 * </ol>
 * {@link #checkFits} refuses the first stage that does not fit in one line naming the block or
 * stage, the bytes and the setting to change; {@code inspect --plan} prints the same plan.
 */
public final class RunPlan {
  private final String action;
  private final ExecutorShape executor;
  private final Optional<Cache> cache;
  private final Optional<ExpertPlan> experts;
  private final Optional<MemoryPlan> blocks;
  private final boolean scoring;
  private final Optional<Evaluation> evaluation;

  /** Stage 1: the calibration cache and the words that name the run's settings in a refusal. */
  public record Cache(CalibrationMemory memory, String run) {
    public Cache {
      Objects.requireNonNull(memory, "memory is null");
      Objects.requireNonNull(run, "run is null");
    }
  }

  /** Stage 4: an in-process forward's largest block, what a batch adds, and the heap it runs in. */
  public record Evaluation(int block, long blockBytes, long batchBytes, String settings) {}

  private RunPlan(String action, ExecutorShape executor, Optional<Cache> cache, Optional<ExpertPlan> experts, Optional<MemoryPlan> blocks,
      boolean scoring, Optional<Evaluation> evaluation) {
    this.action = Objects.requireNonNull(action, "action is null");
    this.executor = Objects.requireNonNull(executor, "executor is null");
    this.cache = cache;
    this.experts = experts;
    this.blocks = blocks;
    this.scoring = scoring;
    this.evaluation = evaluation;
  }

  /**
   * A prune run's plan: the calibration cache where it samples text, the expert plan where it
   * calibrates, the block plan with its scoring tasks. {@code action} starts a refusal ("Cannot
   * prune M").
   */
  public static RunPlan prune(String action, ExecutorShape executor, Optional<Cache> cache, Optional<ExpertPlan> experts, MemoryPlan blocks) {
    return new RunPlan(action, executor, cache, experts, Optional.of(blocks), true, Optional.empty());
  }

  /**
   * A shrink run's plan: the calibration cache and the blocks held as float in calibration (no
   * scoring tasks). Shrink keeps per-channel and per-head sums, so its statistics are counted as
   * Wanda's (8 bytes per input channel and group), an upper bound. {@code experts}: the expert
   * plan of the blocks the job shards (empty: every block whole, as today's shrink runs).
   */
  public static RunPlan shrink(ModelArchive archive, ModelLayout layout, String model, CalibrationSettings settings, ExecutorShape executor,
      int defaultPartitions, Optional<ExpertPlan> experts) {
    MemoryPlan blocks = MemoryPlan.of(archive, layout,
        new MemoryPlan.Settings(settings.nsamples(), settings.seqlen(), PruningMethod.WANDA, Long.MAX_VALUE), executor);
    return new RunPlan("Cannot shrink " + model, executor, Optional.of(cache(archive, layout, settings, defaultPartitions)), experts,
        Optional.of(blocks), false, Optional.empty());
  }

  /** An in-process evaluation's plan ({@code eval --text}): this JVM is the executor. */
  public static RunPlan evaluate(String action, ExecutorShape executor, Evaluation evaluation) {
    return new RunPlan(action, executor, Optional.empty(), Optional.empty(), Optional.empty(), false, Optional.of(evaluation));
  }

  /**
   * The calibration cache of {@code settings}' windows on {@code layout} (hidden states, a
   * chunk's widest activation), over {@code defaultPartitions} when --partitions is not given.
   */
  public static Cache cache(ModelArchive archive, ModelLayout layout, CalibrationSettings settings, int defaultPartitions) {
    int topK = MixtureOfExperts.of(archive.config()).map(MixtureOfExperts::topK).orElse(1);
    long hidden = layout.linears().get(0).inFeatures();
    return new Cache(CalibrationMemory.estimate(settings, hidden, CalibrationMemory.widestPerToken(layout, topK), defaultPartitions),
        String.format(Locale.ROOT, "%d samples x %d tokens (--nsamples, --seqlen)", settings.nsamples(), settings.seqlen()));
  }

  /**
   * The in-process forward of {@code batch} windows of {@code seqlen} tokens: the largest block
   * as float (4 bytes x its parameters, experts included), the head as float, and a batch's
   * hidden states in and out, widest activation and logits.
   */
  public static Evaluation evaluation(ModelArchive archive, ModelLayout layout, int batch, int seqlen) {
    int topK = MixtureOfExperts.of(archive.config()).map(MixtureOfExperts::topK).orElse(1);
    long hidden = layout.linears().get(0).inFeatures();
    long vocab = archive.config().json().path("vocab_size").asLong(0);
    long largest = 0;
    int largestBlock = 0;
    for (Block block : layout.blocks()) {
      long parameters = 0;
      for (Linear linear : block.linears()) {
        parameters += linear.parameters();
      }
      if (4 * parameters > largest) {
        largest = 4 * parameters;
        largestBlock = block.index();
      }
    }
    long tokens = (long) batch * seqlen;
    long batchBytes = 4 * tokens * (2 * hidden + CalibrationMemory.widestPerToken(layout, topK) + vocab) + 4 * vocab * hidden;
    return new Evaluation(largestBlock, largest, batchBytes, String.format(Locale.ROOT, "--batch %d x --seqlen %d", batch, seqlen));
  }

  /** The expert plan, where the run calibrates MoE blocks per expert group. */
  public Optional<ExpertPlan> experts() {
    return experts;
  }

  /** The block plan (prune, shrink, inspect). */
  public Optional<MemoryPlan> blocks() {
    return blocks;
  }

  public Optional<Cache> cache() {
    return cache;
  }

  public ExecutorShape executor() {
    return executor;
  }

  /** Whether block {@code b}'s calibration runs expert-parallel (its tasks never hold it whole). */
  public boolean sharded(int block) {
    return experts.isPresent() && experts.get().sharded(block);
  }

  /**
   * Refuses, in one line, the first stage that cannot fit: the calibration cache, an expert task,
   * a block held as float in calibration (blocks the expert plan shards are its), a scoring task,
   * an in-process forward.
   */
  public void checkFits() {
    cache.ifPresent(stage -> stage.memory().check(stage.run(), executor));
    experts.ifPresent(ExpertPlan::checkFits);
    IntPredicate sharded = this::sharded;
    if (blocks.isPresent()) {
      blocks.get().checkCalibrationFits(action, sharded);
      if (scoring) {
        blocks.get().checkScoringFits(action);
      }
    }
    evaluation.ifPresent(stage -> {
      long needed = stage.blockBytes() + stage.batchBytes();
      ValidationException.check(needed <= executor.memoryBytes(),
          "%s: block %d needs about %s in this JVM (%s as float + %s of a batch's activations and logits for %s), more than its heap of"
              + " %s (%s); raise %s or lower --batch or --seqlen",
          action, stage.block(), MemoryPlan.gib(needed), MemoryPlan.gib(stage.blockBytes()), MemoryPlan.gib(stage.batchBytes()),
          stage.settings(), MemoryPlan.gib(executor.memoryBytes()), executor.source(), executor.setting());
    });
  }

  /** The one-line refusal {@link #checkFits} would give; empty when the plan fits. */
  public Optional<String> refusal() {
    try {
      checkFits();
      return Optional.empty();
    } catch (ValidationException e) {
      return Optional.of(e.getMessage());
    }
  }

  /** The methods inspect --plan may plan, for the statistics an expert keeps. */
  public static ExpertStatistics statistics(PruningMethod method) {
    return ExpertStatistics.of(method.hessianStorage());
  }
}
