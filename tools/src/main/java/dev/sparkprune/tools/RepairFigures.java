package dev.sparkprune.tools;

import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.model.Perplexity;
import dev.sparkprune.scoring.repair.RepairSettings;
import dev.sparkprune.scoring.repair.SequentialRepair;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.ExpertSaliency;
import dev.sparkprune.scoring.structure.ShrinkDecision;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.scoring.structure.StructureCalibration;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.shrink.TensorReplacements;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The repaired rows of README's shrink table, without Spark: the shrink job's decision steps in
 * one JVM (as {@code ShrinkFigures}: 128 × 256 calibration windows of the text drawn with seed 0
 * as {@code CalibrationSamples} draws them, 16 chunks), the unrepaired shrunk archive, then
 * {@link SequentialRepair} on the same calibration chunks and the repaired archive written with
 * its replacement tensors; perplexity of both archives read back from disk, on the first 200
 * windows of 256 tokens of the same text (README's protocol).
 *
 * <p>{@code -Ddisjoint=true} draws the calibration windows only from tokens after the first
 * 64,000 (the eval windows and the trained model's validation split), so no evaluated token is
 * fitted on. {@code -Druns=a,b} keeps the named cuts; {@code -Drepairs=x,y} the named repairs.
 * Not a test: run by hand, {@code java -cp ... RepairFigures MODEL TEXT OUTDIR}.
 */
public final class RepairFigures {
  private static final int NSAMPLES = 128;
  private static final int SEQLEN = 256;
  private static final int EVAL_WINDOWS = 200;
  private static final int CHUNKS = 16;
  private static final int DISJOINT_FROM = 64_000;

  private RepairFigures() {}

  public static void main(String[] args) throws Exception {
    Path modelPath = Path.of(args[0]);
    String text = Files.readString(Path.of(args[1]));
    Path work = Path.of(args[2]);
    boolean disjoint = Boolean.getBoolean("disjoint");
    LocalFileIO io = new LocalFileIO();
    ModelArchive archive = ModelArchive.open(io, modelPath.toString());
    ModelShape shape = ModelShape.of(archive.config());
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    int[] corpus = tokenizer.encode(text, true);
    int[][] samples = sample(corpus, disjoint ? DISJOINT_FROM : 0, NSAMPLES, SEQLEN, 0);
    List<int[][]> chunks = new ArrayList<>();
    Map<Integer, int[][]> numbered = new LinkedHashMap<>();
    for (int c = 0; c < CHUNKS; c++) {
      chunks.add(Arrays.copyOfRange(samples, c * NSAMPLES / CHUNKS, (c + 1) * NSAMPLES / CHUNKS));
      numbered.put(c, chunks.get(c));
    }
    LinearAlgebra linalg = CpuBackend.defaultInstance().linearAlgebra();
    ChunkSummary summary;
    double densePpl;
    try (DecoderModel model = Models.open(archive, linalg)) {
      summary = ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, numbered, 2));
      densePpl = perplexity(model, corpus);
      System.out.printf(Locale.ROOT, "dense\t%,d params\tppl %.4f\t(calibration %s)%n", archive.totalParameters(), densePpl,
          disjoint ? "disjoint from the eval windows" : "README protocol");
    }

    Map<String, ShrinkSettings> cuts = new LinkedHashMap<>();
    cuts.put("mlp-0.75", settings(0, 0.75, 1, "activation"));
    cuts.put("drop-1", settings(1, 1, 1, "activation"));
    cuts.put("heads-0.75", settings(0, 1, 0.75, "activation"));
    cuts.put("heads-0.5", settings(0, 1, 0.5, "activation"));
    cuts.put("mlp-0.5", settings(0, 0.5, 1, "activation"));
    cuts.put("drop-2", settings(2, 1, 1, "activation"));
    cuts.put("drop-1+mlp-0.75", settings(1, 0.75, 1, "activation"));
    cuts.put("mlp-0.75-flap", settings(0, 0.75, 1, "flap"));
    cuts.put("heads-0.75-flap", settings(0, 1, 0.75, "flap"));
    Map<String, RepairSettings> repairs = new LinkedHashMap<>();
    repairs.put("default", RepairSettings.DEFAULTS);
    repairs.put("stream", new RepairSettings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.PRECEDING_COLUMNS, RepairSettings.Scope.CHANGED, 0.01));
    repairs.put("normalized", new RepairSettings(RepairSettings.Target.NORMALIZED, RepairSettings.DepthFit.PRECEDING_COLUMNS, RepairSettings.Scope.CHANGED, 0.01));
    repairs.put("local", new RepairSettings(RepairSettings.Target.LOCAL, RepairSettings.DepthFit.PRECEDING_COLUMNS, RepairSettings.Scope.CHANGED, 0.01));
    repairs.put("map", new RepairSettings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.PRECEDING_MAP, RepairSettings.Scope.CHANGED, 0.01));
    repairs.put("next", new RepairSettings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.NEXT, RepairSettings.Scope.CHANGED, 0.01));
    repairs.put("both", new RepairSettings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.BOTH, RepairSettings.Scope.CHANGED, 0.01));
    repairs.put("normalized-both", new RepairSettings(RepairSettings.Target.NORMALIZED, RepairSettings.DepthFit.BOTH, RepairSettings.Scope.CHANGED, 0.01));
    repairs.put("all", new RepairSettings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.PRECEDING_COLUMNS, RepairSettings.Scope.ALL, 0.01));
    repairs.put("damp-0.1", new RepairSettings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.PRECEDING_COLUMNS, RepairSettings.Scope.CHANGED, 0.1));
    repairs.put("damp-0.001", new RepairSettings(RepairSettings.Target.STREAM, RepairSettings.DepthFit.PRECEDING_COLUMNS, RepairSettings.Scope.CHANGED, 0.001));
    keep(cuts, System.getProperty("runs"));
    keep(repairs, System.getProperty("repairs"));

    int index = 0;
    for (Map.Entry<String, ShrinkSettings> cut : cuts.entrySet()) {
      ShrinkDecision decision = ShrinkDecision.choose(shape, cut.getValue(), summary);
      Path raw = Files.createDirectories(work.resolve("cut-" + index));
      ShrunkArchive shrunk = new ShrunkArchive(archive, decision.plan());
      shrunk.writeTo(io, raw.toString());
      ModelArchive rawArchive = ModelArchive.open(io, raw.toString());
      double plain;
      try (DecoderModel model = Models.open(rawArchive, linalg)) {
        plain = perplexity(model, corpus);
      }
      System.out.printf(Locale.ROOT, "%s\t%,d params\tdropped %s\tno repair ppl %.4f%n", cut.getKey(), shrunk.parameters(), decision.droppedBlocks(), plain);
      int variant = 0;
      for (Map.Entry<String, RepairSettings> repair : repairs.entrySet()) {
        long start = System.nanoTime();
        SequentialRepair.Result result;
        try (DecoderModel dense = Models.open(archive, linalg); DecoderModel model = Models.open(rawArchive, linalg)) {
          result = SequentialRepair.run(dense, model, decision.plan(), repair.getValue(), chunks, List.of(), linalg);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        Path repaired = Files.createDirectories(work.resolve("cut-" + index + "-repair-" + variant++));
        new ShrunkArchive(archive, decision.plan(), TensorReplacements.of(result.tensors())).writeTo(io, repaired.toString());
        double ppl;
        try (DecoderModel model = Models.open(ModelArchive.open(io, repaired.toString()), linalg)) {
          ppl = perplexity(model, corpus);
        }
        StringBuilder residuals = new StringBuilder();
        for (SequentialRepair.BlockRefit refit : result.refits()) {
          residuals.append(String.format(Locale.ROOT, " %d:%s %.3g->%.3g", refit.sourceBlock(),
              refit.tensor().contains("o_proj") ? "o" : refit.fit().equals("map") ? "T" : "down", refit.errorBefore(), refit.errorAfter()));
        }
        System.out.printf(Locale.ROOT, "%s\t%s\tppl %.4f\tgap closed %.1f%%\t(%.1f s)\t%s%n", cut.getKey(), repair.getKey(), ppl,
            100 * (plain - ppl) / (plain - densePpl), seconds, residuals);
      }
      index++;
    }
  }

  /** CalibrationSamples' draw on one document: windows at uniform offsets from SplittableRandom(seed), in draw order. */
  static int[][] sample(int[] corpus, int from, int nsamples, int seqlen, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    int[][] samples = new int[nsamples][];
    for (int i = 0; i < nsamples; i++) {
      int start = from + random.nextInt(corpus.length - from - seqlen + 1);
      samples[i] = Arrays.copyOfRange(corpus, start, start + seqlen);
    }
    return samples;
  }

  private static double perplexity(DecoderModel model, int[] corpus) throws java.io.IOException {
    return Perplexity.evaluate(model, corpus, SEQLEN, EVAL_WINDOWS, 8).perplexity();
  }

  private static ShrinkSettings settings(int drop, double mlp, double heads, String width) {
    return new ShrinkSettings(drop, ShrinkSettings.LayerMetric.ANGULAR, mlp, heads, ShrinkSettings.WidthMetric.parse(width), 1, ExpertSaliency.Metric.REAP);
  }

  private static <T> void keep(Map<String, T> runs, String names) {
    if (names != null && !names.isBlank()) {
      runs.keySet().retainAll(List.of(names.split(",")));
    }
  }
}
