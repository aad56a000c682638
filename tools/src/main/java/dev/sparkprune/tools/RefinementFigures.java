package dev.sparkprune.tools;

import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.methods.LinearInputs;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.scoring.methods.Wanda;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;

/**
 * The README's update/refine perplexity table without Spark's overhead: the prune job's
 * sequential mode (calibrate a block on the pruned model's activations, prune each linear with
 * {@link Refinement#pruner}, advance) in one JVM, then perplexity on the pruned blocks.
 * Not a test: run by hand, {@code java -cp ... RefinementFigures MODEL TEXT}.
 */
public final class RefinementFigures {
  private RefinementFigures() {}

  public static void main(String[] args) throws Exception {
    String modelPath = args[0];
    String text = args[1];
    int nsamples = 128;
    int seqlen = 256;
    int evalWindows = 200;
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ModelArchive archive = ModelArchive.open(io, modelPath);
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    int[][] samples = dev.sparkprune.jobs.calibration.CalibrationSamples.sample(io, text, tokenizer, nsamples, seqlen, 0);
    int[] corpus = tokenizer.encode(Files.readString(Path.of(text)), true);
    ComputeBackend backend = dev.sparkprune.scoring.backend.CpuBackend.defaultInstance();
    Refinement admm = new Refinement(Refinement.Update.ADMM, dev.sparkprune.scoring.methods.Admm.DEFAULTS, false,
        dev.sparkprune.scoring.methods.Dsnot.DEFAULTS, Refinement.DSNOT_SKIP_DEFAULT);
    Refinement dsnot = new Refinement(Refinement.Update.NONE, dev.sparkprune.scoring.methods.Admm.DEFAULTS, true,
        dev.sparkprune.scoring.methods.Dsnot.DEFAULTS, Refinement.DSNOT_SKIP_DEFAULT);
    Refinement dsnotAll = new Refinement(Refinement.Update.NONE, dev.sparkprune.scoring.methods.Admm.DEFAULTS, true,
        dev.sparkprune.scoring.methods.Dsnot.DEFAULTS, "");
    Refinement gradual = new Refinement(Refinement.Update.ADMM_GRADUAL, dev.sparkprune.scoring.methods.Admm.DEFAULTS, false,
        dev.sparkprune.scoring.methods.Dsnot.DEFAULTS, Refinement.DSNOT_SKIP_DEFAULT);
    Map<String, Object[]> runs = new LinkedHashMap<>();
    runs.put("Wanda", new Object[] {PruningMethod.WANDA, Refinement.NONE});
    runs.put("Wanda+DSnoT", new Object[] {PruningMethod.WANDA, dsnot});
    runs.put("Wanda+DSnoT(all layers)", new Object[] {PruningMethod.WANDA, dsnotAll});
    runs.put("Wanda+ADMM", new Object[] {PruningMethod.WANDA, admm});
    runs.put("ADMM-gradual", new Object[] {PruningMethod.WANDA, gradual});
    runs.put("SparseGPT", new Object[] {PruningMethod.SPARSEGPT, Refinement.NONE});
    runs.put("SparseGPT-mask+ADMM", new Object[] {PruningMethod.SPARSEGPT, admm});
    // DSnoT's 50 cycles are ~1% of a LLaMA-7B row (4096 columns) but most of a 64-column one: the same share is 1 cycle here.
    dev.sparkprune.scoring.methods.Dsnot.Settings oneCycle = new dev.sparkprune.scoring.methods.Dsnot.Settings(1, 0.1, 1);
    runs.put("Wanda+DSnoT(1 cycle)", new Object[] {PruningMethod.WANDA,
        new Refinement(Refinement.Update.NONE, dev.sparkprune.scoring.methods.Admm.DEFAULTS, true, oneCycle, Refinement.DSNOT_SKIP_DEFAULT)});
    runs.put("Wanda+DSnoT(1 cycle; all layers)", new Object[] {PruningMethod.WANDA,
        new Refinement(Refinement.Update.NONE, dev.sparkprune.scoring.methods.Admm.DEFAULTS, true, oneCycle, "")});
    runs.put("Wanda+DSnoT(1 cycle)+ADMM", new Object[] {PruningMethod.WANDA,
        new Refinement(Refinement.Update.ADMM, dev.sparkprune.scoring.methods.Admm.DEFAULTS, true, oneCycle, Refinement.DSNOT_SKIP_DEFAULT)});
    if (args.length > 3) {
      runs.keySet().retainAll(java.util.Set.of(args[3].split(",")));
    }
    String[] targets = args.length > 2 ? args[2].split(",") : new String[] {"0.5", "0.7", "2:4"};
    try (DecoderModel model = Models.open(archive, backend.linearAlgebra())) {
      System.out.printf(Locale.ROOT, "dense: ppl %.4f%n", perplexity(model, denseBlocks(model), corpus, seqlen, evalWindows));
      for (String target : targets) {
        for (Map.Entry<String, Object[]> run : runs.entrySet()) {
          long start = System.nanoTime();
          List<BlockWeights> pruned = prune(
              model, samples, SparsityTarget.parse(target), (PruningMethod) run.getValue()[0], (Refinement) run.getValue()[1], backend);
          double ppl = perplexity(model, pruned, corpus, seqlen, evalWindows);
          System.out.printf(Locale.ROOT, "%s\t%s\tppl %.4f\t(%.1f s)%n", target, run.getKey(), ppl, (System.nanoTime() - start) / 1e9);
        }
      }
    }
  }

  static List<BlockWeights> denseBlocks(DecoderModel model) throws java.io.IOException {
    List<BlockWeights> blocks = new ArrayList<>();
    for (int b = 0; b < model.layout().blocks().size(); b++) {
      blocks.add(model.loadBlock(b));
    }
    return blocks;
  }

  /** Sequential mode: each block calibrated on the activations of the already pruned blocks. */
  static List<BlockWeights> prune(
      DecoderModel model, int[][] samples, SparsityTarget target, PruningMethod method, Refinement refinement,
      ComputeBackend backend) throws java.io.IOException {
    CalibrationStatistics.HessianStorage storage = refinement.needsHessian() || method == PruningMethod.SPARSEGPT
        ? CalibrationStatistics.HessianStorage.DOUBLE : CalibrationStatistics.HessianStorage.NONE;
    HiddenStates[] hidden = new HiddenStates[samples.length];
    for (int s = 0; s < samples.length; s++) {
      hidden[s] = model.embed(new int[][] {samples[s]});
    }
    List<BlockWeights> blocks = new ArrayList<>();
    for (int b = 0; b < model.layout().blocks().size(); b++) {
      BlockWeights weights = model.loadBlock(b);
      Map<String, CalibrationStatistics> statistics = new LinkedHashMap<>();
      InputHook hook = (linears, input, tokens, sequences) -> statistics
          .computeIfAbsent(linears.get(0).inputGroup(), key -> CalibrationStatistics.create((int) linears.get(0).inFeatures(), storage))
          .add(input, 0, tokens, sequences, backend.linearAlgebra());
      for (HiddenStates sample : hidden) {
        model.runBlock(weights, sample, hook);
      }
      for (Linear linear : model.layout().blocks().get(b).linears()) {
        float[] values = weights.tensor(linear.tensorName());
        PruneResult result = refinement.pruner(method, Wanda.Group.ROW).prune(
            LinearInputs.of(linear.tensorName(), Weights.of((int) linear.outFeatures(), (int) linear.inFeatures(), values))
                .withStatistics(statistics.get(linear.inputGroup())),
            target, backend, 2);
        weights = weights.withTensor(linear.tensorName(), result.weights());
      }
      for (int s = 0; s < hidden.length; s++) {
        hidden[s] = model.runBlock(weights, hidden[s], InputHook.NONE);
      }
      blocks.add(weights);
    }
    return blocks;
  }

  /** Perplexity.evaluate's protocol over the given blocks. */
  static double perplexity(DecoderModel model, List<BlockWeights> blocks, int[] corpus, int seqlen, int maxWindows)
      throws java.io.IOException {
    int windows = Math.min(corpus.length / seqlen, maxWindows);
    double sum = 0;
    for (int first = 0; first < windows; first += 8) {
      int count = Math.min(8, windows - first);
      int[][] batch = new int[count][];
      for (int i = 0; i < count; i++) {
        batch[i] = java.util.Arrays.copyOfRange(corpus, (first + i) * seqlen, (first + i + 1) * seqlen);
      }
      HiddenStates h = model.embed(batch);
      for (BlockWeights block : blocks) {
        h = model.runBlock(block, h, InputHook.NONE);
      }
      for (double nll : model.meanNll(h, batch)) {
        sum += nll;
      }
    }
    return Math.exp(sum / windows);
  }
}
