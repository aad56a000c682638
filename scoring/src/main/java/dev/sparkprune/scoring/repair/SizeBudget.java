package dev.sparkprune.scoring.repair;

import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.KeepCounts;
import dev.sparkprune.scoring.structure.ShrinkDecision;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;

/**
 * The size-budget objective (Minitron's search without its retraining): candidates are
 * combinations of depth, MLP width, KV groups and experts whose shrunk archive keeps at most a
 * fraction of the parameters; each is scored by the mean next-token NLL on held-out calibration
 * windows after {@link SequentialRepair} (never on the eval text), and the lowest wins.
 *
 * <p>Only maximal candidates are scored: those where no single axis can take its next larger
 * step and stay within the budget (a smaller cut of the same kind keeps strictly more). That
 * includes the largest single-axis cut of each kind, so the winner is at least as good on the
 * held-out windows as the best single-axis cut within the budget.
 *
 * <p>Every {@link #evaluate} is a pure function of the source archive, the folded structure
 * summary, the candidate, the settings and the windows: candidates evaluate in any order, in
 * parallel (one per executor task), and give the same score anywhere.
 */
public final class SizeBudget {
  /** MLP keep fractions searched: multiples of 1/8 from 1/2 (each rounds to a multiple of 8 channels). */
  static final double[] MLP_STEPS = {1, 0.875, 0.75, 0.625, 0.5};

  private SizeBudget() {}

  /**
   * The grid's axes: drop 0 .. maxDrop blocks, the MLP steps on models with dense MLPs, every
   * whole number of KV groups from half of them (only where the model allows --heads-keep) and
   * of experts from half of them on MoE models; every combination but the one that cuts nothing.
   */
  public static List<ShrinkCandidate> grid(ModelShape shape, int maxDrop, boolean headsAllowed) {
    ValidationException.check(maxDrop >= 0 && maxDrop < shape.blocks(), "Invalid search depth: drop at most %d of %d blocks", maxDrop, shape.blocks());
    List<Double> mlp = new ArrayList<>();
    for (double step : shape.hasDenseMlp() ? MLP_STEPS : new double[] {1}) {
      mlp.add(step);
    }
    List<Double> heads = fractions(headsAllowed ? shape.kvHeads() : 1);
    List<Double> experts = fractions(Math.max(1, shape.experts()));
    List<ShrinkCandidate> grid = new ArrayList<>();
    for (int drop = 0; drop <= maxDrop; drop++) {
      for (double m : mlp) {
        for (double h : heads) {
          for (double e : experts) {
            if (drop > 0 || m < 1 || h < 1 || e < 1) {
              grid.add(new ShrinkCandidate(drop, m, h, e));
            }
          }
        }
      }
    }
    return grid;
  }

  /** k / count for k from count down to ceil(count / 2): whole structures, the largest cut keeping half. */
  private static List<Double> fractions(int count) {
    List<Double> out = new ArrayList<>();
    for (int k = count; k >= (count + 1) / 2; k--) {
      out.add((double) k / count);
    }
    return out;
  }

  /** The shrunk archive's parameters under a candidate: the driver's decision on the summary, then the plan's tensor sizes (headers only). */
  public static CandidateScore size(ModelArchive source, ModelShape shape, ChunkSummary summary, ShrinkSettings metrics, ShrinkCandidate candidate) {
    ShrinkSettings settings = candidate.settings(metrics);
    ShrinkDecision decision = ShrinkDecision.choose(shape, settings, summary);
    long parameters = new ShrunkArchive(source, decision.plan()).parameters();
    return new CandidateScore(candidate, parameters, decision.droppedBlocks(), Double.NaN, Double.NaN);
  }

  /**
   * The maximal candidates of the grid within {@code budget} × the source's parameters (see
   * the class comment), with their sizes.
   */
  public static List<CandidateScore> maximal(List<CandidateScore> sized, long sourceParameters, double budget) {
    KeepCounts.checkFraction("parameter budget", budget);
    long limit = (long) Math.floor(budget * sourceParameters);
    List<CandidateScore> within = new ArrayList<>();
    for (CandidateScore score : sized) {
      ShrinkCandidate c = score.candidate();
      boolean cuts = c.dropBlocks() > 0 || c.mlpKeep() < 1 || c.headsKeep() < 1 || c.expertsKeep() < 1;
      if (cuts && score.parameters() <= limit) {
        within.add(score);
      }
    }
    List<CandidateScore> out = new ArrayList<>();
    for (CandidateScore score : within) {
      boolean dominated = false;
      for (CandidateScore other : within) {
        if (other != score && oneStepLarger(other.candidate(), score.candidate(), sized)) {
          dominated = true;
          break;
        }
      }
      if (!dominated) {
        out.add(score);
      }
    }
    return out;
  }

  /** Whether {@code larger} is {@code c} with one axis at its next larger grid value. */
  private static boolean oneStepLarger(ShrinkCandidate larger, ShrinkCandidate c, List<CandidateScore> grid) {
    int differing = 0;
    boolean grows = false;
    if (larger.dropBlocks() != c.dropBlocks()) {
      differing++;
      grows = larger.dropBlocks() == c.dropBlocks() - 1;
    }
    if (larger.mlpKeep() != c.mlpKeep()) {
      differing++;
      grows = nextLarger(grid, c, 1) == larger.mlpKeep();
    }
    if (larger.headsKeep() != c.headsKeep()) {
      differing++;
      grows = nextLarger(grid, c, 2) == larger.headsKeep();
    }
    if (larger.expertsKeep() != c.expertsKeep()) {
      differing++;
      grows = nextLarger(grid, c, 3) == larger.expertsKeep();
    }
    return differing == 1 && grows;
  }

  /** The smallest grid value above c's on one axis (1 mlp, 2 heads, 3 experts), or NaN. */
  private static double nextLarger(List<CandidateScore> grid, ShrinkCandidate c, int axis) {
    double current = axis == 1 ? c.mlpKeep() : axis == 2 ? c.headsKeep() : c.expertsKeep();
    double best = Double.NaN;
    for (CandidateScore score : grid) {
      ShrinkCandidate g = score.candidate();
      double value = axis == 1 ? g.mlpKeep() : axis == 2 ? g.headsKeep() : g.expertsKeep();
      if (value > current && (Double.isNaN(best) || value < best)) {
        best = value;
      }
    }
    return best;
  }

  /** A candidate's decision, parameters and repair (its replacement tensors and held-out NLLs). */
  public record Trial(ShrinkDecision decision, long parameters, SequentialRepair.Result repair) {}

  /**
   * Scores one candidate: its decision, the unrepaired shrunk archive staged under
   * {@code scratch} (a folder of its own, emptied after), {@link SequentialRepair} on the
   * calibration chunks, and the held-out windows' mean NLL through the repaired and the
   * unrepaired model. Memory: that of {@link SequentialRepair}; disk: one shrunk archive.
   */
  public static CandidateScore evaluate(
      ModelArchive source, ModelShape shape, ChunkSummary summary, ShrinkSettings metrics, ShrinkCandidate candidate, RepairSettings repair,
      List<int[][]> chunks, List<int[][]> heldOut, FileIO io, String scratch, LinearAlgebra linalg) throws IOException {
    Trial trial = trial(source, shape, summary, metrics, candidate, repair, chunks, heldOut, io, scratch, linalg);
    return new CandidateScore(
        candidate, trial.parameters(), trial.decision().droppedBlocks(), trial.repair().heldOutNll(), trial.repair().heldOutNllUnrepaired());
  }

  /** {@link #evaluate}, keeping the decision and the repair's tensors (to write the candidate's archive). */
  public static Trial trial(
      ModelArchive source, ModelShape shape, ChunkSummary summary, ShrinkSettings metrics, ShrinkCandidate candidate, RepairSettings repair,
      List<int[][]> chunks, List<int[][]> heldOut, FileIO io, String scratch, LinearAlgebra linalg) throws IOException {
    Objects.requireNonNull(candidate, "candidate is null");
    ValidationException.check(!heldOut.isEmpty(), "Cannot score a candidate without held-out calibration windows");
    ShrinkDecision decision = ShrinkDecision.choose(shape, candidate.settings(metrics), summary);
    ShrunkArchive shrunk = new ShrunkArchive(source, decision.plan());
    try {
      shrunk.writeTo(io, scratch);
      try (DecoderModel dense = Models.open(source, linalg);
          DecoderModel model = Models.open(ModelArchive.open(io, scratch), linalg)) {
        return new Trial(decision, shrunk.parameters(), SequentialRepair.run(dense, model, decision.plan(), repair, chunks, heldOut, linalg));
      }
    } finally {
      for (String file : io.listFiles(scratch)) {
        io.delete(io.resolve(scratch, file));
      }
    }
  }

  /** The lowest held-out NLL; on a tie the larger model, then the earlier candidate. */
  public static CandidateScore best(List<CandidateScore> scores) {
    ValidationException.check(!scores.isEmpty(), "Cannot choose a configuration: no candidate fits the budget; raise the fraction of parameters to keep");
    return scores.stream()
        .min(Comparator.comparingDouble(CandidateScore::heldOutNll).thenComparing(Comparator.comparingLong(CandidateScore::parameters).reversed()))
        .orElseThrow();
  }
}
