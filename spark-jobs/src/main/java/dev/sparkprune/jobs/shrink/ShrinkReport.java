package dev.sparkprune.jobs.shrink;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.scoring.structure.ShrinkDecision;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.shrink.KeptBlock;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.util.Locale;
import java.util.Map;

/**
 * report.json of a shrink run: the settings, parameters before and after, which blocks were
 * dropped and why (block influence of every block, angular distance of every candidate run,
 * with gradients each block's first-order removal importance),
 * and per kept block what it keeps with the score of every MLP channel, KV group and expert.
 */
public final class ShrinkReport {
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private final ObjectNode root;

  /** @param repairs whether the repair runs: asked for, and not skipped on an FP8 archive (see ShrinkJob) */
  ShrinkReport(ShrinkOptions options, ShrinkDecision decision, long parametersBefore, long parametersAfter, boolean repairs) {
    root = JSON.createObjectNode();
    ObjectNode configuration = root.putObject("configuration");
    ShrinkSettings settings = options.settings();
    configuration.put("model", options.model());
    configuration.put("calib", options.calibration());
    configuration.put("nsamples", options.nsamples());
    configuration.put("seqlen", options.seqlen());
    configuration.put("seed", options.seed());
    configuration.put("drop_layers", settings.dropBlocks());
    configuration.put("layer_metric", settings.layerMetric().name().toLowerCase(Locale.ROOT).replace('_', '-'));
    configuration.put("mlp_keep", settings.mlpKeep());
    configuration.put("heads_keep", settings.headsKeep());
    configuration.put("width_metric", settings.widthMetric().name().toLowerCase(Locale.ROOT).replace('_', '-'));
    configuration.put("experts_keep", settings.expertsKeep());
    configuration.put("expert_metric", settings.expertMetric().name().toLowerCase(Locale.ROOT));
    if (options.budget().isSet()) {
      // The cut above is the size budget's choice (see size_budget).
      configuration.put(options.budget().option().substring(2).replace('-', '_'), options.budget().fraction());
    }
    configuration.put("repair", repairs ? "ls" : options.repair() ? "none (FP8 archive: refits are not re-quantized)" : "none");
    configuration.put("then_prune", options.thenPrune());
    if (!options.thenPrune().isEmpty()) {
      configuration.put("then_prune_target", options.thenTarget().toString());
    }
    root.put("parameters_before", parametersBefore);
    root.put("parameters_after", parametersAfter);
    ShrinkPlan plan = decision.plan();
    ObjectNode shape = root.putObject("shrunk_shape");
    shape.put("num_hidden_layers", plan.blocks().size());
    shape.put("intermediate_size", plan.intermediate());
    shape.put("num_attention_heads", plan.heads());
    shape.put("num_key_value_heads", plan.kvHeads());
    shape.put("experts", plan.experts());
    ArrayNode dropped = root.putArray("dropped_blocks");
    decision.droppedBlocks().forEach(dropped::add);
    doubles(root.putArray("block_influence"), decision.blockInfluence());
    doubles(root.putArray("angular_distance_of_run_from_block"), decision.angularDistances());
    if (decision.blockRemoval().length > 0) {
      doubles(root.putArray("block_removal_importance"), decision.blockRemoval());
    }
    ArrayNode blocks = root.putArray("blocks");
    for (int i = 0; i < plan.blocks().size(); i++) {
      KeptBlock kept = plan.blocks().get(i);
      ObjectNode block = blocks.addObject();
      block.put("source_block", kept.source());
      block.put("block", i);
      addScores(block, "mlp_channels", decision.mlpScores(), kept.source(), kept.mlpChannels());
      addScores(block, "kv_groups", decision.kvGroupScores(), kept.source(), kept.kvGroups());
      addScores(block, "experts", decision.expertScores(), kept.source(), kept.experts());
    }
  }

  private static void addScores(ObjectNode block, String name, Map<Integer, double[]> scores, int source, int[] kept) {
    double[] values = scores.get(source);
    if (values == null) {
      return;
    }
    ObjectNode node = block.putObject(name);
    node.put("kept", kept.length);
    node.put("of", values.length);
    ArrayNode keptIndices = node.putArray("kept_indices");
    for (int index : kept) {
      keptIndices.add(index);
    }
    doubles(node.putArray("scores"), values);
  }

  private static void doubles(ArrayNode array, double[] values) {
    for (double value : values) {
      array.add(value);
    }
  }

  /**
   * The repair's refits in order: per refitted linear, the squared residual ‖target − output‖²
   * on the calibration tokens before and after its refit (the block's output against the dense
   * stream at the same point), and the damping used.
   */
  void repair(java.util.List<ShrinkRepair.Refit> refits) {
    ArrayNode array = root.putArray("repair");
    for (ShrinkRepair.Refit refit : refits) {
      ObjectNode node = array.addObject();
      node.put("block", refit.block());
      node.put("source_block", refit.sourceBlock());
      node.put("tensor", refit.figures().tensor());
      node.put("fit", refit.figures().fit());
      node.put("residual_before", refit.figures().errorBefore());
      node.put("residual_after", refit.figures().errorAfter());
      node.put("tokens", refit.figures().tokens());
      node.put("damping", refit.figures().damping());
    }
  }

  /**
   * The size budget's search: the budget, how it counts, and every maximal candidate scored, in
   * grid order (blocks dropped, MLP keep fraction, KV groups and experts per block kept, parameters
   * kept and their fraction, the held-out NLL the choice used), the chosen one marked.
   */
  void budget(BudgetSearch.Outcome outcome) {
    ObjectNode node = root.putObject("size_budget");
    node.put("option", outcome.target().option());
    node.put("fraction", outcome.target().fraction());
    node.put("counted_before", outcome.sourceCounted());
    node.put("limit", outcome.limit());
    node.put("loss", "mean next-token NLL of held-out calibration windows, disjoint from the repair's");
    ArrayNode candidates = node.putArray("candidates");
    for (int i = 0; i < outcome.candidates().size(); i++) {
      BudgetSearch.Candidate candidate = outcome.candidates().get(i);
      ObjectNode entry = candidates.addObject();
      entry.put("drop_layers", candidate.score().candidate().dropBlocks());
      ArrayNode dropped = entry.putArray("dropped_blocks");
      candidate.score().droppedBlocks().forEach(dropped::add);
      entry.put("mlp_keep", candidate.score().candidate().mlpKeep());
      entry.put("kv_groups", candidate.kvGroups());
      entry.put("experts", candidate.experts());
      entry.put("parameters", candidate.parameters());
      entry.put("active_parameters", candidate.active());
      entry.put("fraction", (double) candidate.score().parameters() / outcome.sourceCounted());
      entry.put("held_out_loss", candidate.loss());
      entry.put("held_out_loss_unrepaired", candidate.score().heldOutNllUnrepaired());
      entry.put("chosen", i == outcome.chosen());
    }
  }

  public void stage(String name, double seconds) {
    ObjectNode stages = root.has("seconds") ? (ObjectNode) root.get("seconds") : root.putObject("seconds");
    stages.put(name, Math.round(seconds * 1000) / 1000.0);
  }

  public ObjectNode json() {
    return root.deepCopy();
  }

  void write(HadoopFileIO io, String location) throws IOException {
    try (OutputStream out = io.newOutputFile(location).create()) {
      JSON.writeValue(out, root);
    }
  }

  public void printSummary(PrintStream out) {
    out.printf(Locale.ROOT, "shrink: %,d -> %,d parameters (%.1f%%); dropped blocks %s; %s%n",
        root.get("parameters_before").longValue(), root.get("parameters_after").longValue(),
        100.0 * root.get("parameters_after").longValue() / root.get("parameters_before").longValue(),
        root.get("dropped_blocks"), root.get("shrunk_shape"));
  }
}
