package dev.sparkprune.tools;

import dev.sparkprune.jobs.calibration.CalibrationSamples;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.ExpertSaliency;
import dev.sparkprune.scoring.structure.ShrinkDecision;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.scoring.structure.StructureCalibration;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;

/**
 * The README's shrink table without Spark's overhead: the shrink job's steps in one JVM
 * (calibration summaries over 16 chunks, the driver's decision, the archive rewrite; the job is
 * tested equal to these steps), then parameters and perplexity of each shrunk archive, and for
 * --then-prune the sequential Wanda of {@link RefinementFigures} on the shrunk model.
 * Not a test: run by hand, {@code java -cp ... ShrinkFigures MODEL TEXT OUTDIR}.
 */
public final class ShrinkFigures {
  private ShrinkFigures() {}

  public static void main(String[] args) throws Exception {
    String modelPath = args[0];
    String text = args[1];
    Path work = Path.of(args[2]);
    int nsamples = 128;
    int seqlen = 256;
    int evalWindows = 200;
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ModelArchive archive = ModelArchive.open(io, modelPath);
    ModelShape shape = ModelShape.of(archive.config());
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    int[][] samples = CalibrationSamples.sample(io, text, tokenizer, nsamples, seqlen, 0);
    int[] corpus = tokenizer.encode(Files.readString(Path.of(text)), true);
    ComputeBackend backend = dev.sparkprune.scoring.backend.CpuBackend.defaultInstance();
    Map<Integer, int[][]> chunks = new LinkedHashMap<>();
    for (int c = 0; c < 16; c++) {
      chunks.put(c, Arrays.copyOfRange(samples, c * nsamples / 16, (c + 1) * nsamples / 16));
    }
    ChunkSummary summary;
    try (DecoderModel model = Models.open(archive, backend.linearAlgebra())) {
      summary = ChunkSummary.foldInOrder(StructureCalibration.run(model, shape, chunks, 2));
      System.out.printf(Locale.ROOT, "dense\t%,d params\tppl %.4f%n", archive.totalParameters(),
          RefinementFigures.perplexity(model, RefinementFigures.denseBlocks(model), corpus, seqlen, evalWindows));
    }
    Map<String, ShrinkSettings> runs = new LinkedHashMap<>();
    for (String metric : new String[] {"angular", "block-influence"}) {
      for (int drop = 1; drop <= 2; drop++) {
        runs.put("--drop-layers " + drop + " --layer-metric " + metric, settings(drop, ShrinkSettings.LayerMetric.parse(metric), 1, 1, "activation"));
      }
    }
    for (String width : new String[] {"activation", "weight-norm"}) {
      runs.put("--mlp-keep 0.75 --width-metric " + width, settings(0, ShrinkSettings.LayerMetric.ANGULAR, 0.75, 1, width));
      runs.put("--mlp-keep 0.5 --width-metric " + width, settings(0, ShrinkSettings.LayerMetric.ANGULAR, 0.5, 1, width));
      runs.put("--heads-keep 0.75 --width-metric " + width, settings(0, ShrinkSettings.LayerMetric.ANGULAR, 1, 0.75, width));
    }
    runs.put("--drop-layers 1 --mlp-keep 0.75", settings(1, ShrinkSettings.LayerMetric.ANGULAR, 0.75, 1, "activation"));
    int index = 0;
    for (Map.Entry<String, ShrinkSettings> run : runs.entrySet()) {
      ShrinkDecision decision = ShrinkDecision.choose(shape, run.getValue(), summary);
      Path out = work.resolve("shrunk-" + index++);
      Files.createDirectories(out);
      ShrunkArchive shrunk = new ShrunkArchive(archive, decision.plan());
      shrunk.writeTo(new LocalFileIO(), out.toString());
      try (DecoderModel model = Models.open(ModelArchive.open(io, out.toString()), backend.linearAlgebra())) {
        double ppl = RefinementFigures.perplexity(model, RefinementFigures.denseBlocks(model), corpus, seqlen, evalWindows);
        System.out.printf(Locale.ROOT, "%s\t%,d params\tppl %.4f\tdropped %s%n", run.getKey(), shrunk.parameters(), ppl, decision.droppedBlocks());
        if (run.getKey().equals("--drop-layers 1 --mlp-keep 0.75")) {
          double pruned = RefinementFigures.perplexity(model, RefinementFigures.prune(
              model, samples, SparsityTarget.parse("0.5"), PruningMethod.WANDA, Refinement.NONE, backend), corpus, seqlen, evalWindows);
          System.out.printf(Locale.ROOT, "%s --then-prune wanda --sparsity 0.5\tppl %.4f%n", run.getKey(), pruned);
        }
      }
    }
  }

  private static ShrinkSettings settings(int drop, ShrinkSettings.LayerMetric layer, double mlp, double heads, String width) {
    return new ShrinkSettings(drop, layer, mlp, heads, ShrinkSettings.WidthMetric.parse(width), 1, ExpertSaliency.Metric.REAP);
  }
}
