package dev.sparkprune.tools;

import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.model.Perplexity;
import dev.sparkprune.scoring.repair.CandidateScore;
import dev.sparkprune.scoring.repair.RepairSettings;
import dev.sparkprune.scoring.repair.ShrinkCandidate;
import dev.sparkprune.scoring.repair.SizeBudget;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.ExpertSaliency;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.scoring.structure.StructureCalibration;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.shrink.TensorReplacements;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The size-budget rows of README's shrink table: for each budget (fractions of the parameters,
 * {@code -Dbudgets=0.85,0.7}), every maximal candidate of {@link SizeBudget}'s grid (drop up to
 * {@code -DmaxDrop} blocks, default 2) is repaired on 128 × 256 calibration windows and scored on
 * 32 held-out calibration windows (seed 1), both drawn only after the first 64,000 tokens of the
 * text; then each candidate's repaired archive is written and its perplexity measured on the
 * first 200 windows of 256 tokens (README's eval windows, never fitted or scored on), so the
 * search's choice can be checked against the best single-axis cut.
 * Not a test: run by hand, {@code java -cp ... BudgetFigures MODEL TEXT OUTDIR}.
 */
public final class BudgetFigures {
  private BudgetFigures() {}

  public static void main(String[] args) throws Exception {
    Path work = Path.of(args[2]);
    LocalFileIO io = new LocalFileIO();
    ModelArchive archive = ModelArchive.open(io, args[0]);
    ModelShape shape = ModelShape.of(archive.config());
    int[] corpus = TokenizerLoader.load(archive).encode(Files.readString(Path.of(args[1])), true);
    int[][] samples = RepairFigures.sample(corpus, 64_000, 128, 256, 0);
    int[][] held = RepairFigures.sample(corpus, 64_000, 32, 256, 1);
    List<int[][]> chunks = new ArrayList<>();
    Map<Integer, int[][]> numbered = new LinkedHashMap<>();
    for (int c = 0; c < 16; c++) {
      chunks.add(Arrays.copyOfRange(samples, c * 8, (c + 1) * 8));
      numbered.put(c, chunks.get(c));
    }
    List<int[][]> heldOut = List.of(Arrays.copyOfRange(held, 0, 16), Arrays.copyOfRange(held, 16, 32));
    int maxDrop = Integer.getInteger("maxDrop", 2);
    LinearAlgebra linalg = CpuBackend.defaultInstance().linearAlgebra();
    ChunkSummary summary;
    try (DecoderModel model = Models.open(archive, linalg)) {
      summary = ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, numbered, maxDrop));
      System.out.printf(Locale.ROOT, "dense\t%,d params\teval ppl %.4f%n", archive.totalParameters(),
          Perplexity.evaluate(model, corpus, 256, 200, 8).perplexity());
    }
    ShrinkSettings metrics = new ShrinkSettings(
        0, ShrinkSettings.LayerMetric.ANGULAR, 1, 1, ShrinkSettings.WidthMetric.ACTIVATION, 1, ExpertSaliency.Metric.REAP);
    List<CandidateScore> sized = new ArrayList<>();
    for (ShrinkCandidate candidate : SizeBudget.grid(shape, maxDrop, true)) {
      sized.add(SizeBudget.size(archive, shape, summary, metrics, candidate));
    }
    int run = 0;
    for (String budgetText : System.getProperty("budgets", "0.85,0.7").split(",")) {
      double budget = Double.parseDouble(budgetText);
      List<CandidateScore> scores = new ArrayList<>();
      Map<CandidateScore, Double> ppl = new LinkedHashMap<>();
      for (CandidateScore candidate : SizeBudget.maximal(sized, archive.totalParameters(), budget)) {
        Path scratch = Files.createDirectories(work.resolve("scratch"));
        SizeBudget.Trial trial = SizeBudget.trial(
            archive, shape, summary, metrics, candidate.candidate(), RepairSettings.DEFAULTS, chunks, heldOut, io, scratch.toString(), linalg);
        CandidateScore score = new CandidateScore(candidate.candidate(), trial.parameters(), trial.decision().droppedBlocks(),
            trial.repair().heldOutNll(), trial.repair().heldOutNllUnrepaired());
        Path out = Files.createDirectories(work.resolve("budget-" + run++));
        new ShrunkArchive(archive, trial.decision().plan(), TensorReplacements.of(trial.repair().tensors())).writeTo(io, out.toString());
        try (DecoderModel model = Models.open(ModelArchive.open(io, out.toString()), linalg)) {
          ppl.put(score, Perplexity.evaluate(model, corpus, 256, 200, 8).perplexity());
        }
        scores.add(score);
        System.out.printf(Locale.ROOT, "budget %.2f\t%s%s\t%,d params (%.1f%%)\tdropped %s\theld-out NLL %.4f (unrepaired %.4f)\teval ppl %.4f%n",
            budget, score.candidate(), score.candidate().isSingleAxis() ? " [single axis]" : "", score.parameters(),
            100.0 * score.parameters() / archive.totalParameters(), score.droppedBlocks(), score.heldOutNll(), score.heldOutNllUnrepaired(),
            ppl.get(score));
      }
      CandidateScore best = SizeBudget.best(scores);
      System.out.printf(Locale.ROOT, "budget %.2f\tchosen: %s\teval ppl %.4f%n", budget, best.candidate(), ppl.get(best));
    }
  }
}
