package dev.sparkprune.jobs.gradient;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.jobs.plan.CalibrationSettings;
import dev.sparkprune.scoring.grad.GradientStatistics;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.InputFiles;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;

/**
 * {@code grads.json} of a gradient set: what the gradients are of (the model's fingerprint, the
 * loss and the per-sample scale), which calibration windows they came from (settings and the
 * fingerprint of the token ids), the tensors the set holds, and each block's first-order removal
 * importance. Reuse ({@code --grads}) refuses a set of another model, loss or scale.
 *
 * @param blockImportance per block, |mean over samples of dLoss/dOutput . (input - output)|
 */
public record GradientManifest(
    String modelFingerprint, String loss, double scale, CalibrationSettings calibration, String calibrationFingerprint, long samples,
    List<String> tensors, double[] blockImportance) {
  public static final String FILE = "grads.json";
  static final String FORMAT = "sparkprune-gradient-set";
  static final int VERSION = 1;
  /** The loss every gradient of this version is of, as GBLM-Pruner computes it (labels = input_ids). */
  public static final String LOSS = "causal-lm-mean-cross-entropy";
  private static final long MAX_BYTES = 64L << 20;
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  public GradientManifest {
    Objects.requireNonNull(modelFingerprint, "modelFingerprint is null");
    Objects.requireNonNull(loss, "loss is null");
    Objects.requireNonNull(calibration, "calibration is null");
    Objects.requireNonNull(calibrationFingerprint, "calibrationFingerprint is null");
    tensors = List.copyOf(tensors);
    blockImportance = blockImportance.clone();
  }

  @Override
  public double[] blockImportance() {
    return blockImportance.clone();
  }

  void write(HadoopFileIO io, String directory) throws IOException {
    ObjectNode json = JSON.createObjectNode();
    json.put("format", FORMAT);
    json.put("version", VERSION);
    json.put("model_fingerprint", modelFingerprint);
    json.put("loss", loss);
    json.put("scale", scale);
    json.put("calibration", calibration.location());
    json.put("calibration_fingerprint", calibrationFingerprint);
    json.put("nsamples", calibration.nsamples());
    json.put("seqlen", calibration.seqlen());
    json.put("seed", calibration.seed());
    json.put("samples", samples);
    ArrayNode importance = json.putArray("block_removal_importance");
    for (double value : blockImportance) {
      importance.add(value);
    }
    tensors.forEach(json.putArray("tensors")::add);
    String location = io.resolve(directory, FILE);
    io.delete(location);
    try (OutputStream out = io.newOutputFile(location).create()) {
      out.write(JSON.writeValueAsString(json).getBytes(StandardCharsets.UTF_8));
    }
  }

  /**
   * Reads a saved set's manifest and checks it serves this run: a sparkprune gradient set of this
   * model, of this version's loss and scale, holding every tensor the run reads.
   *
   * @param option how the user named the folder ("--grads"), for the messages
   */
  public static GradientManifest check(HadoopFileIO io, String directory, String option, String modelFingerprint,
      Collection<String> needed) throws IOException {
    String location = io.resolve(directory, FILE);
    ValidationException.check(io.exists(location), "Invalid %s %s: no %s (was it written with --save-grads?)", option, directory, FILE);
    JsonNode json;
    try {
      json = JSON.readTree(InputFiles.readAll(io.newInputFile(location), MAX_BYTES));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new ValidationException("Invalid " + option + " " + directory + ": " + FILE + " is not valid JSON", e);
    }
    ValidationException.check(json != null && FORMAT.equals(json.path("format").asText()) && json.path("version").asInt() == VERSION,
        "Invalid %s %s: not a sparkprune gradient set of version %d", option, directory, VERSION);
    String fingerprint = json.path("model_fingerprint").asText();
    ValidationException.check(modelFingerprint.equals(fingerprint),
        "Cannot use %s %s: the gradients were computed for a different model (fingerprint %s, this model %s)", option, directory,
        fingerprint, modelFingerprint);
    String loss = json.path("loss").asText();
    double scale = json.path("scale").asDouble(Double.NaN);
    ValidationException.check(LOSS.equals(loss) && scale == GradientStatistics.SCALE,
        "Cannot use %s %s: the gradients are of loss '%s' with scale %s, not %s with scale %s; compute them again with --save-grads",
        option, directory, loss, json.path("scale").asText(), LOSS, GradientStatistics.SCALE);
    List<String> tensors = new ArrayList<>();
    json.path("tensors").forEach(tensor -> tensors.add(tensor.asText()));
    for (String tensor : needed) {
      ValidationException.check(tensors.contains(tensor), "Cannot use %s %s: it holds no gradients of %s", option, directory, tensor);
    }
    JsonNode importance = json.path("block_removal_importance");
    double[] blocks = new double[importance.size()];
    for (int b = 0; b < blocks.length; b++) {
      blocks[b] = importance.get(b).asDouble();
    }
    CalibrationSettings calibration = new CalibrationSettings(json.path("calibration").asText(), json.path("nsamples").asInt(),
        json.path("seqlen").asInt(), json.path("seed").asLong(), 0);
    return new GradientManifest(fingerprint, loss, scale, calibration, json.path("calibration_fingerprint").asText(),
        json.path("samples").asLong(), tensors, blocks);
  }
}
