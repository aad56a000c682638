package dev.sparkprune.jobs.prune.output;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.io.FileIO;
import dev.sparkprune.tensorio.quant.QuantizationError;
import dev.sparkprune.tensorio.quant.Requantization;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a prune run did: configuration, input fingerprints, per-layer sparsity and SparseGPT
 * losses, totals and time per stage. Written as {@code report.json} and printed as a table.
 */
public final class PruneReport {
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private final ObjectNode json;
  private final List<LinearResult> layers;

  private PruneReport(ObjectNode json, List<LinearResult> layers) {
    this.json = json;
    this.layers = layers;
  }

  /** A report whose configuration section lists these settings, in this order (strings and numbers). */
  public static Builder builder(Map<String, Object> configuration) {
    return new Builder(configuration);
  }

  public ObjectNode json() {
    return json.deepCopy();
  }

  public int layerCount() {
    return layers.size();
  }

  public long prunedParameters() {
    long pruned = 0;
    for (LinearResult layer : layers) {
      pruned += (long) layer.rows * layer.cols - layer.kept;
    }
    return pruned;
  }

  /** Per-layer sparsity by tensor name. */
  public Map<String, Double> sparsityByTensor() {
    Map<String, Double> out = new LinkedHashMap<>();
    layers.forEach(layer -> out.put(layer.tensor, layer.sparsity()));
    return out;
  }

  public void write(FileIO io, String location) throws IOException {
    try (OutputStream out = io.newOutputFile(location).create()) {
      out.write(JSON.writeValueAsString(json).getBytes(StandardCharsets.UTF_8));
    }
  }

  public void printSummary(PrintStream out) {
    out.printf(Locale.ROOT, "%-5s %-18s %-12s %9s %14s%n", "block", "linear", "out x in", "sparsity", "sgpt loss");
    for (LinearResult layer : layers) {
      out.printf(Locale.ROOT, "%-5d %-18s %-12s %8.2f%% %14s%n", layer.block, layer.linear, layer.rows + " x " + layer.cols,
          100 * layer.sparsity(), Double.isNaN(layer.reconstructionLoss) ? "-" : String.format(Locale.ROOT, "%.4g", layer.reconstructionLoss));
    }
    ObjectNode totals = (ObjectNode) json.get("totals");
    out.printf(Locale.ROOT, "total: %,d of %,d prunable weights pruned (%.2f%%), %,d parameters in the model; %.1f s%n",
        totals.get("pruned").asLong(), totals.get("prunable").asLong(), 100 * totals.get("sparsity").asDouble(),
        totals.get("parameters").asLong(), json.get("seconds").get("total").asDouble());
    Map<String, Integer> byBackend = new java.util.TreeMap<>();
    Map<String, Integer> fallbacks = new java.util.TreeMap<>();
    for (LinearResult layer : layers) {
      byBackend.merge(layer.placement.backend, 1, Integer::sum);
      if (!layer.placement.fallbackReason.isEmpty()) {
        fallbacks.merge(layer.placement.fallbackReason, 1, Integer::sum);
      }
    }
    byBackend.forEach((backend, count) -> out.printf(Locale.ROOT, "scored on %s: %d linears%n", backend, count));
    fallbacks.forEach((reason, count) ->
        out.printf(Locale.ROOT, "warning: %d linears were given a GPU but scored on the CPU: %s%n", count, reason));
    ObjectNode requantized = (ObjectNode) totals.get("requantization");
    if (requantized != null) {
      out.printf(Locale.ROOT, "written in the source format: %d quantized tensors, %,d of %,d blocks re-quantized, "
              + "relative Frobenius error %.3g (see report.json per tensor)%n",
          requantized.get("tensors").asInt(), requantized.get("blocks_requantized").asLong(), requantized.get("blocks").asLong(),
          requantized.get("relative_frobenius_error").asDouble());
    }
  }

  /**
   * One entry per expert of each block: the calibration tokens its statistics saw (its routed
   * tokens, or every token with --moe-calibration all) and whether it fell back to magnitude.
   */
  private static void experts(ObjectNode json, List<LinearResult> layers) {
    Map<String, ObjectNode> byExpert = new LinkedHashMap<>();
    ArrayNode array = null;
    for (LinearResult layer : layers) {
      if (layer.expert.isEmpty()) {
        continue;
      }
      array = array == null ? json.putArray("experts") : array;
      ObjectNode entry = byExpert.get(layer.block + "/" + layer.expert);
      if (entry == null) {
        entry = array.addObject();
        entry.put("block", layer.block);
        entry.put("expert", layer.expert);
        entry.put("calibration_tokens", layer.calibrationTokens);
        entry.put("magnitude_fallback", false);
        byExpert.put(layer.block + "/" + layer.expert, entry);
      }
      if (!layer.fallback.isEmpty()) {
        entry.put("magnitude_fallback", true);
        entry.put("fallback", layer.fallback);
      }
    }
  }

  /**
   * What writing pruned weights in their quantized source format cost: blocks (FP8 128x128, MXFP4
   * groups of 32) quantized anew of all, and the written values' error against the method's
   * floats (zero where the method only pruned: codes zeroed in place).
   */
  private static ObjectNode requantization(ObjectNode node, Requantization requantization) {
    node.put("blocks", requantization.blocks());
    node.put("blocks_requantized", requantization.requantizedBlocks());
    node.put("relative_frobenius_error", requantization.error().relativeFrobenius());
    node.put("max_abs_error", requantization.error().maxAbsError());
    return node;
  }

  public static final class Builder {
    private final ObjectNode json = JSON.createObjectNode();
    private final ObjectNode seconds;
    private final ArrayNode blocks;
    private List<LinearResult> layers = new ArrayList<>();
    private long parameters;

    private Builder(Map<String, Object> configuration) {
      json.put("format", "sparkprune-report");
      json.put("version", 1);
      ObjectNode config = json.putObject("configuration");
      configuration.forEach((key, value) -> config.set(key, JSON.valueToTree(value)));
      seconds = json.putObject("seconds");
      blocks = json.putArray("blocks");
    }

    public Builder model(ModelLayout layout, String fingerprint) {
      ObjectNode model = json.putObject("model");
      model.put("model_type", layout.modelType());
      model.put("parameters", layout.totalParameters());
      model.put("prunable", layout.prunableParameters());
      model.put("fingerprint", fingerprint);
      parameters = layout.totalParameters();
      return this;
    }

    public Builder allocation(String kind, double minKeep, float threshold, long histogramBytes) {
      ObjectNode allocation = json.putObject("allocation");
      allocation.put("kind", kind);
      allocation.put("min_keep", minKeep);
      allocation.put("threshold", threshold);
      allocation.put("histogram_bytes_to_driver", histogramBytes);
      return this;
    }

    public Builder owl(double lambda, double m, double[] outlierRatios, dev.sparkprune.scoring.SparsityTarget[] targets) {
      ObjectNode allocation = json.putObject("allocation");
      allocation.put("kind", "owl");
      allocation.put("lambda", lambda);
      allocation.put("m", m);
      ArrayNode blocks = allocation.putArray("blocks");
      for (int b = 0; b < targets.length; b++) {
        blocks.addObject().put("block", b).put("outlier_ratio_percent", outlierRatios[b]).put("target", targets[b].toString())
            .put("sparsity", targets[b].ratio());
      }
      return this;
    }

    /**
     * The gradient set the gradient methods scored with: {@code saved} is the reused set's
     * folder, "" for this run's own; its samples and calibration fingerprint, the norm, each
     * block's first-order removal importance, and the seconds spent getting it.
     */
    public Builder gradients(String saved, long samples, String calibrationFingerprint, String norm, double[] blockImportance,
        double seconds) {
      ObjectNode gradients = json.putObject("gradients");
      gradients.put("source", saved.isEmpty() ? "computed" : "saved");
      if (!saved.isEmpty()) {
        gradients.put("location", saved);
      }
      gradients.put("samples", samples);
      gradients.put("calibration_fingerprint", calibrationFingerprint);
      gradients.put("norm", norm);
      ArrayNode importance = gradients.putArray("block_removal_importance");
      for (double value : blockImportance) {
        importance.add(value);
      }
      gradients.put("seconds", seconds);
      return this;
    }

    public Builder calibrationFingerprint(String value) {
      json.with("configuration").put("calibration_fingerprint", value);
      return this;
    }

    public Builder stage(String name, double atSeconds) {
      seconds.put(name, atSeconds);
      return this;
    }

    public Builder block(int block, double blockSeconds) {
      blocks.addObject().put("block", block).put("seconds", blockSeconds);
      return this;
    }

    public Builder layers(List<LinearResult> results) {
      layers = new ArrayList<>(results);
      layers.sort(Comparator.<LinearResult>comparingInt(layer -> layer.block).thenComparing(layer -> layer.tensor));
      return this;
    }

    public Builder total(double totalSeconds) {
      seconds.put("total", totalSeconds);
      return this;
    }

    public PruneReport build() {
      ArrayNode array = json.putArray("layers");
      long prunable = 0;
      long pruned = 0;
      Requantization written = new Requantization(QuantizationError.NONE, 0, 0);
      int quantizedTensors = 0;
      for (LinearResult layer : layers) {
        ObjectNode node = array.addObject();
        node.put("block", layer.block);
        node.put("linear", layer.linear);
        node.put("tensor", layer.tensor);
        node.put("rows", layer.rows);
        node.put("cols", layer.cols);
        node.put("kept", layer.kept);
        node.put("sparsity", layer.sparsity());
        if (!Double.isNaN(layer.reconstructionLoss)) {
          node.put("reconstruction_loss", layer.reconstructionLoss);
          node.put("damping", layer.damping);
        }
        if (!layer.expert.isEmpty()) {
          node.put("expert", layer.expert);
        }
        if (layer.calibrationTokens >= 0) {
          node.put("calibration_tokens", layer.calibrationTokens);
        }
        if (!layer.fallback.isEmpty()) {
          node.put("fallback", layer.fallback);
        }
        if (!layer.storage.isEmpty()) {
          node.put("storage", layer.storage);
        }
        if (layer.quantized()) {
          requantization(node.putObject("requantization"), layer.requantization);
          written = written.plus(layer.requantization);
          quantizedTensors++;
        }
        node.put("seconds", layer.seconds);
        node.put("executor", layer.placement.executor);
        node.put("backend", layer.placement.backend);
        if (!layer.placement.gpu.isEmpty()) {
          node.put("gpu", layer.placement.gpu);
        }
        if (!layer.placement.fallbackReason.isEmpty()) {
          node.put("gpu_fallback", layer.placement.fallbackReason);
        }
        prunable += (long) layer.rows * layer.cols;
        pruned += (long) layer.rows * layer.cols - layer.kept;
      }
      experts(json, layers);
      ObjectNode totals = json.putObject("totals");
      totals.put("parameters", parameters);
      totals.put("prunable", prunable);
      totals.put("pruned", pruned);
      totals.put("sparsity", prunable == 0 ? 0 : (double) pruned / prunable);
      if (quantizedTensors > 0) {
        requantization(totals.putObject("requantization"), written).put("tensors", quantizedTensors);
      }
      return new PruneReport(json, layers);
    }
  }
}
