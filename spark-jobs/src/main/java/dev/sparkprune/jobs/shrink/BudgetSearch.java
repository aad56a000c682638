package dev.sparkprune.jobs.shrink;

import dev.sparkprune.jobs.plan.CalibrationMemory;
import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.jobs.calibration.CalibrationSamples;
import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.repair.CandidateScore;
import dev.sparkprune.scoring.repair.RepairSettings;
import dev.sparkprune.scoring.repair.ShrinkCandidate;
import dev.sparkprune.scoring.repair.SizeBudget;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.ShrinkDecision;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.shrink.TensorSlice;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import org.apache.hadoop.fs.Path;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.Function;
import scala.Tuple2;

/**
 * The shrink job's size budget ({@code --target-params}, {@code --target-active-params}): the
 * grid of {@link SizeBudget} sized on the driver from the archive's headers and the folded
 * structure summary (no weight), only its maximal candidates within the budget kept, each scored
 * by one executor task ({@link SizeBudget#evaluate}: the candidate's unrepaired archive staged in
 * a scratch folder of its own, the in-process repair on the calibration chunks, the mean
 * next-token NLL of held-out calibration windows). Only the scores come back; the lowest wins,
 * ties to the larger model, then to the earlier candidate in grid order, so the choice is the
 * same on any partitioning.
 *
 * <p>Held-out windows: {@link #heldOutWindows} of the calibration text ({@link
 * CalibrationSamples#heldOut}), sharing no token with the windows the repair fits on; never the
 * eval text.
 *
 * <p>Memory of one candidate task, in bytes ({@link #taskBytes}): 4 × [2 × (nsamples + held-out)
 * × seqlen × hidden (the dense and shrunk streams of every calibration and held-out window) + 2 ×
 * outside (embeddings, head and final norm of both models, outside = all parameters less the
 * blocks' linears) + 2 × largest block (one dense and one shrunk block's weights, all its experts)
 * + chunk tokens × (4 × hidden + 2 × widest + 2 × refit input) (a chunk's activations, captured
 * input and error) + seqlen × outside / hidden (one window's logits)] + 12 × in² + 8 × in × hidden
 * (one refit's sums and scratch, in = the widest refitted input). The whole model is never held
 * as floats: blocks are read one at a time from the archive.
 */
final class BudgetSearch {
  /** Pattern of a routed expert's tensor name (a shared expert is "shared_expert(s)."). */
  private static final String ROUTED = ".experts.";

  private BudgetSearch() {}

  /** Held-out windows scored per candidate: a quarter of --nsamples, at least one. */
  static int heldOutWindows(int nsamples) {
    return Math.max(1, nsamples / 4);
  }

  /**
   * Every scored candidate in grid order, the winner's index in that list, and the source's
   * parameters as the budget counts them.
   */
  record Outcome(SizeTarget target, long sourceCounted, long limit, List<Candidate> candidates, int chosen) {
    Outcome {
      candidates = List.copyOf(candidates);
    }

    Candidate winner() {
      return candidates.get(chosen);
    }
  }

  /**
   * A maximal candidate: its score (parameters as the budget counts them), all its parameters,
   * its kept KV groups and experts per block, and the held-out NLL the choice used (repaired, or
   * unrepaired under --repair none).
   */
  record Candidate(CandidateScore score, long parameters, long active, int kvGroups, int experts, double loss) {}

  /**
   * The deepest cut the grid needs: the fewest blocks whose removal alone meets the budget (a
   * deeper cut is never maximal: one block fewer still fits), at most all but the last block.
   * Counted from headers on plans dropping the first blocks.
   */
  static int maxDrop(ModelArchive archive, ModelShape shape, SizeTarget target) {
    long limit = limit(counted(archive, shape, target), target);
    for (int drop = 1; drop < shape.blocks(); drop++) {
      List<Integer> kept = new ArrayList<>();
      for (int b = drop; b < shape.blocks(); b++) {
        kept.add(b);
      }
      try {
        ShrinkPlan plan = ShrinkPlan.of(shape, kept, Map.of(), Map.of(), Map.of());
        if (counted(new ShrunkArchive(archive, plan), target, shape) <= limit) {
          return drop;
        }
      } catch (ValidationException e) {
        // A drop the architecture refuses (gpt-oss drops pairs): the next one.
      }
    }
    return shape.blocks() - 1;
  }

  private static long limit(long sourceCounted, SizeTarget target) {
    return (long) Math.floor(target.fraction() * sourceCounted);
  }

  /** The source's parameters as the budget counts them. */
  static long counted(ModelArchive archive, ModelShape shape, SizeTarget target) {
    long total = archive.totalParameters();
    if (target.kind() != SizeTarget.Kind.ACTIVE_PARAMETERS || shape.experts() == 0) {
      return total;
    }
    long routed = 0;
    for (ArchiveTensor tensor : archive.tensors()) {
      routed += tensor.name().contains(ROUTED) ? tensor.numel() : 0;
    }
    return active(total, routed, shape.experts(), shape);
  }

  /** A shrunk archive's parameters as the budget counts them. */
  static long counted(ShrunkArchive shrunk, SizeTarget target, ModelShape source) {
    return target.kind() == SizeTarget.Kind.ACTIVE_PARAMETERS ? activeParameters(shrunk, source) : shrunk.parameters();
  }

  /** A shrunk archive's parameters a token runs through: all of them on a dense model. */
  static long activeParameters(ShrunkArchive shrunk, ModelShape source) {
    long total = shrunk.parameters();
    if (shrunk.plan().experts() == 0) {
      return total;
    }
    long routed = 0;
    for (String shard : shrunk.shards()) {
      for (TensorSlice slice : shrunk.slices(shard)) {
        routed += slice.target().contains(ROUTED) ? TensorInfo.numel(slice.shape()) : 0;
      }
    }
    return active(total, routed, shrunk.plan().experts(), source);
  }

  /** Every routed expert of a block has the same size, and a token runs through top-k of them. */
  private static long active(long total, long routed, int experts, ModelShape shape) {
    int topK = shape.moe().orElseThrow().topK();
    return total - routed + Math.round((double) routed * Math.min(topK, experts) / experts);
  }

  /** A candidate sized from headers: its score before scoring (parameters as the budget counts them) and its shrunk archive. */
  record Sized(CandidateScore score, ShrunkArchive shrunk) {}

  /** The grid sized from headers and the summary, and its maximal candidates within the budget, in grid order. */
  static List<Sized> maximal(ModelArchive archive, ModelShape shape, ChunkSummary summary, ShrinkSettings metrics, SizeTarget target,
      int maxDrop) {
    List<CandidateScore> sized = new ArrayList<>();
    Map<ShrinkCandidate, ShrunkArchive> shrunk = new HashMap<>();
    for (ShrinkCandidate candidate : SizeBudget.grid(shape, maxDrop, shape.headsRemovable())) {
      try {
        ShrinkDecision decision = ShrinkDecision.choose(shape, candidate.settings(metrics), summary);
        ShrunkArchive archiveOfCut = new ShrunkArchive(archive, decision.plan());
        sized.add(new CandidateScore(candidate, counted(archiveOfCut, target, shape), decision.droppedBlocks(), Double.NaN, Double.NaN));
        shrunk.put(candidate, archiveOfCut);
      } catch (ValidationException e) {
        // A cut the architecture refuses (an odd drop on gpt-oss, experts that break routing groups) is no candidate.
      }
    }
    List<Sized> maximal = new ArrayList<>();
    for (CandidateScore score : SizeBudget.maximal(sized, counted(archive, shape, target), target.fraction())) {
      maximal.add(new Sized(score, shrunk.get(score.candidate())));
    }
    return maximal;
  }

  /**
   * Sizes the grid, scores its maximal candidates on the executors (one task each, at most
   * --partitions tasks when given), and chooses.
   */
  static Outcome run(JobStages stages, ShrinkJob.Inputs inputs, CalibrationSource calibration, ChunkSummary summary, ShrinkOptions options,
      int maxDrop, boolean repair, ProgressLog log) throws IOException {
    ModelArchive archive = inputs.archive();
    ModelShape shape = inputs.shape();
    SizeTarget target = options.budget();
    ShrinkSettings metrics = options.settings();
    List<Sized> maximal = maximal(archive, shape, summary, metrics, target, maxDrop);
    long sourceCounted = counted(archive, shape, target);
    long limit = limit(sourceCounted, target);
    ValidationException.check(!maximal.isEmpty(), "Cannot meet %s %s: no cut searched (drop at most %d blocks, MLP to 1/2, KV groups and"
        + " experts to half) keeps at most %,d of %,d parameters; raise the fraction", target.option(), target.fraction(), maxDrop, limit,
        sourceCounted);
    log.line("size budget: %d candidates within %,d of %,d parameters (%s %s)", maximal.size(), limit, sourceCounted, target.option(),
        target.fraction());

    int[][] held = CalibrationSamples.heldOut(new HadoopFileIO(stages.jsc().hadoopConfiguration()), options.calibration(),
        inputs.tokenizer(), options.nsamples(), options.seqlen(), options.seed(), heldOutWindows(options.nsamples()));
    int batch = CalibrationSource.chunkSize(options.nsamples());
    List<int[][]> heldOut = new ArrayList<>();
    for (int first = 0; first < held.length; first += batch) {
      heldOut.add(Arrays.copyOfRange(held, first, Math.min(held.length, first + batch)));
    }
    List<int[][]> chunks = new ArrayList<>();
    calibration.chunks().forEach(chunk -> chunks.add(chunk._2()));

    List<ShrinkCandidate> candidates = new ArrayList<>();
    List<Integer> indices = new ArrayList<>();
    for (Sized sized : maximal) {
      indices.add(candidates.size());
      candidates.add(sized.score().candidate());
    }
    JobContext context = stages.context();
    String scratch = context.io().resolve(context.staging(), "_budget");
    int tasks = options.partitions() > 0 ? Math.min(options.partitions(), candidates.size()) : candidates.size();
    stages.describe("size budget: score " + candidates.size() + " candidates");
    List<byte[]> collected = stages.jsc().parallelize(indices, tasks)
        .map(new Score(context, candidates, summary, metrics, RepairSettings.DEFAULTS, chunks, heldOut, scratch))
        .collect();
    Path scratchPath = new Path(scratch);
    scratchPath.getFileSystem(stages.jsc().hadoopConfiguration()).delete(scratchPath, true);

    Map<Integer, CandidateScore> byIndex = new HashMap<>();
    for (byte[] bytes : collected) {
      Scored scored = ShrinkFunctions.deserialize(bytes, Scored.class);
      byIndex.put(scored.index(), scored.score());
    }
    List<Candidate> out = new ArrayList<>();
    List<CandidateScore> forChoice = new ArrayList<>();
    for (int i = 0; i < candidates.size(); i++) {
      CandidateScore scored = Objects.requireNonNull(byIndex.get(i), "a candidate's score is missing");
      // The task's score counts all parameters; the budget's count (active ones too) is the driver's.
      CandidateScore score = new CandidateScore(scored.candidate(), maximal.get(i).score().parameters(), scored.droppedBlocks(),
          scored.heldOutNll(), scored.heldOutNllUnrepaired());
      ShrunkArchive shrunk = maximal.get(i).shrunk();
      double loss = repair ? score.heldOutNll() : score.heldOutNllUnrepaired();
      out.add(new Candidate(score, shrunk.parameters(), activeParameters(shrunk, shape), shrunk.plan().kvHeads(), shrunk.plan().experts(), loss));
      forChoice.add(new CandidateScore(score.candidate(), score.parameters(), score.droppedBlocks(), loss, score.heldOutNllUnrepaired()));
      log.line("candidate %s: %,d parameters (%.1f%%), held-out NLL %.4f%s", candidates.get(i), score.parameters(),
          100.0 * score.parameters() / sourceCounted, loss, repair ? String.format(Locale.ROOT, " (unrepaired %.4f)", score.heldOutNllUnrepaired()) : "");
    }
    int chosen = forChoice.indexOf(SizeBudget.best(forChoice));
    log.line("size budget: chose %s", candidates.get(chosen));
    return new Outcome(target, sourceCounted, limit, out, chosen);
  }

  /** A candidate's index in the driver's list and its score, as a task returns them. */
  record Scored(int index, CandidateScore score) implements Serializable {}

  /**
   * Scores one candidate on an executor: the source archive read through the job's file system,
   * its unrepaired archive staged in a folder of its own under the staging folder (named by the
   * candidate and the task attempt, emptied after), {@link SizeBudget#evaluate}.
   */
  static final class Score implements Function<Integer, byte[]> {
    private static final long serialVersionUID = 1L;
    private final JobContext context;
    private final List<ShrinkCandidate> candidates;
    private final ChunkSummary summary;
    private final ShrinkSettings metrics;
    private final RepairSettings repair;
    private final List<int[][]> chunks;
    private final List<int[][]> heldOut;
    private final String scratch;

    Score(JobContext context, List<ShrinkCandidate> candidates, ChunkSummary summary, ShrinkSettings metrics, RepairSettings repair,
        List<int[][]> chunks, List<int[][]> heldOut, String scratch) {
      this.context = context;
      this.candidates = List.copyOf(candidates);
      this.summary = summary;
      this.metrics = metrics;
      this.repair = repair;
      this.chunks = List.copyOf(chunks);
      this.heldOut = List.copyOf(heldOut);
      this.scratch = scratch;
    }

    @Override
    public byte[] call(Integer index) throws IOException {
      context.probe("budget");
      HadoopFileIO io = context.io();
      ModelArchive source = context.archive();
      ModelShape shape = ModelShape.of(source.config());
      TaskContext task = TaskContext.get();
      String folder = io.resolve(scratch, "candidate-" + index + "-" + (task == null ? 0 : task.taskAttemptId()));
      LinearAlgebra linalg = context.backend().backend().linearAlgebra();
      try {
        CandidateScore score = SizeBudget.evaluate(
            source, shape, summary, metrics, candidates.get(index), repair, chunks, heldOut, io, folder, linalg);
        return ShrinkFunctions.serialize(new Scored(index, score));
      } finally {
        Path path = new Path(folder);
        io.fileSystem(path).delete(path, true);
      }
    }
  }

  /**
   * What one candidate task holds at most (see the class comment), from the archive's headers and
   * the calibration settings.
   */
  static long taskBytes(ModelArchive archive, ModelShape shape, ShrinkOptions options) {
    ModelLayout layout = Architectures.layout(archive);
    Map<Integer, Long> blocks = new HashMap<>();
    long inside = 0;
    long widestRefit = 0;
    for (Linear linear : layout.linears()) {
      blocks.merge(linear.block(), linear.parameters(), Long::sum);
      inside += linear.parameters();
      if (!linear.isRoutedExpert() && (linear.name().endsWith("o_proj") || linear.name().endsWith("down_proj"))) {
        widestRefit = Math.max(widestRefit, linear.inFeatures());
      }
    }
    long largestBlock = blocks.values().stream().mapToLong(Long::longValue).max().orElse(0);
    long outside = Math.max(0, archive.totalParameters() - inside);
    long hidden = shape.hidden();
    long seqlen = options.seqlen();
    long windows = options.nsamples() + heldOutWindows(options.nsamples());
    long chunkTokens = (long) CalibrationSource.chunkSize(options.nsamples()) * seqlen;
    int topK = shape.moe().map(moe -> moe.topK()).orElse(1);
    long widest = CalibrationMemory.widestPerToken(layout, topK);
    long floats = 2 * windows * seqlen * hidden + 2 * outside + 2 * largestBlock
        + chunkTokens * (4 * hidden + 2 * widest + 2 * widestRefit) + seqlen * (outside / Math.max(1, hidden));
    return 4 * floats + 12 * widestRefit * widestRefit + 8 * widestRefit * hidden;
  }

  /** Refuses, before Spark starts, a search whose candidate tasks cannot fit an executor task's heap share. */
  static void checkMemory(ModelArchive archive, ModelShape shape, ShrinkOptions options, ExecutorShape executors) {
    long need = taskBytes(archive, shape, options);
    long perTask = executors.usableTaskBytes();
    ValidationException.check(need <= perTask,
        "Cannot search %s %s: scoring a candidate holds about %s in one task (the hidden states of %d calibration and held-out windows"
            + " x %d tokens for two models, two blocks' weights, the embeddings twice and a refit's sums), over the %s each of %d tasks has"
            + " in an executor of %s (%s); use fewer or shorter samples (--nsamples, --seqlen), or more executor memory",
        options.budget().option(), options.budget().fraction(), CalibrationMemory.size(need),
        options.nsamples() + heldOutWindows(options.nsamples()), options.seqlen(), CalibrationMemory.size(perTask), executors.cores(),
        CalibrationMemory.size(executors.memoryBytes()), executors.source());
  }
}
