package dev.sparkprune.jobs.prune.score;

import dev.sparkprune.jobs.plan.CalibrationSettings;
import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.InputFiles;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.spark.api.java.function.PairFunction;
import org.apache.spark.api.java.function.VoidFunction;
import scala.Tuple2;

/**
 * Dense calibration statistics saved by a one-shot run ({@code --save-stats}) and reused by
 * later runs ({@code --stats URI}): one file per statistics key in the statistics layout of
 * {@link CalibrationStatistics}, and {@code stats.json} naming the model fingerprint, the
 * calibration settings and the keys. Reuse checks the fingerprint, so statistics never meet a
 * different model.
 */
public final class StatisticsFiles {
  static final String MANIFEST = "stats.json";
  private static final ObjectMapper JSON = new ObjectMapper();

  private StatisticsFiles() {}

  static String fileName(String key) {
    return "block-" + key.replace('/', '.') + ".safetensors";
  }

  /** Executors write each key's folded statistics. */
  static final class Save implements VoidFunction<Tuple2<String, CalibrationStatistics>> {
    private static final long serialVersionUID = 1L;
    private final dev.sparkprune.jobs.spark.JobContext context;
    private final String directory;

    Save(dev.sparkprune.jobs.spark.JobContext context, String directory) {
      this.context = context;
      this.directory = directory;
    }

    @Override
    public void call(Tuple2<String, CalibrationStatistics> keyed) throws IOException {
      HadoopFileIO io = context.io();
      String location = io.resolve(directory, fileName(keyed._1()));
      io.delete(location);
      try (OutputStream out = io.newOutputFile(location).create()) {
        out.write(keyed._2().toBytes());
      }
    }
  }

  /** Executors read the statistics of one key. */
  static final class Load implements PairFunction<String, String, CalibrationStatistics> {
    private static final long serialVersionUID = 1L;
    private final dev.sparkprune.jobs.spark.JobContext context;
    private final String directory;

    Load(dev.sparkprune.jobs.spark.JobContext context, String directory) {
      this.context = context;
      this.directory = directory;
    }

    @Override
    public Tuple2<String, CalibrationStatistics> call(String key) throws IOException {
      HadoopFileIO io = context.io();
      String location = io.resolve(directory, fileName(key));
      return new Tuple2<>(key, CalibrationStatistics.fromBytes(location, InputFiles.readAll(io.newInputFile(location), Integer.MAX_VALUE)));
    }
  }

  /** Saves the dense statistics of a one-shot run under stats/ in the staging folder, with their manifest. */
  static void save(JobStages stages, org.apache.spark.api.java.JavaPairRDD<String, CalibrationStatistics> all,
      CalibrationStatistics.HessianStorage storage, String modelFingerprint, CalibrationSource calibration, ProgressLog log)
      throws IOException {
    HadoopFileIO io = stages.context().io();
    String directory = io.resolve(stages.context().staging(), "stats");
    stages.describe("save statistics");
    all.foreach(new Save(stages.context(), directory));
    List<String> keys = new java.util.ArrayList<>(all.keys().collect());
    keys.sort(null);
    writeManifest(io, directory, modelFingerprint, calibration, keys, storage);
    log.line("saved dense statistics of %d inputs under stats/", keys.size());
  }

  private static void writeManifest(HadoopFileIO io, String directory, String modelFingerprint, CalibrationSource calibration,
      List<String> keys, CalibrationStatistics.HessianStorage storage) throws IOException {
    CalibrationSettings settings = calibration.settings();
    ObjectNode manifest = JSON.createObjectNode();
    manifest.put("format", "sparkprune-statistics-set");
    manifest.put("version", 1);
    manifest.put("model_fingerprint", modelFingerprint);
    manifest.put("calibration", settings.location());
    manifest.put("calibration_fingerprint", calibration.fingerprint());
    manifest.put("nsamples", settings.nsamples());
    manifest.put("seqlen", settings.seqlen());
    manifest.put("seed", settings.seed());
    manifest.put("hessian", storage != CalibrationStatistics.HessianStorage.NONE);
    keys.forEach(manifest.putArray("keys")::add);
    try (OutputStream out = io.newOutputFile(io.resolve(directory, MANIFEST)).create()) {
      out.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(manifest).getBytes(StandardCharsets.UTF_8));
    }
  }

  /**
   * Reads and checks a saved set against the model and the run; returns its keys. {@code
   * hessianUser} names what needs X^T X (a method, the ADMM update), empty when nothing does.
   */
  public static List<String> checkManifest(HadoopFileIO io, String directory, String modelFingerprint, java.util.Optional<String> hessianUser)
      throws IOException {
    ValidationException.check(io.exists(directory), "Cannot read --stats %s: folder not found", directory);
    String location = io.resolve(directory, MANIFEST);
    ValidationException.check(io.exists(location), "Invalid --stats %s: no %s (was it written with --save-stats?)", directory, MANIFEST);
    JsonNode manifest = JSON.readTree(InputFiles.readAll(io.newInputFile(location), 64L << 20));
    ValidationException.check(
        "sparkprune-statistics-set".equals(manifest.path("format").asText()), "Invalid --stats %s: not a sparkprune statistics set", directory);
    ValidationException.check(
        modelFingerprint.equals(manifest.path("model_fingerprint").asText()),
        "Cannot use --stats %s: they were computed for a different model (fingerprint %s, this model %s)",
        directory,
        manifest.path("model_fingerprint").asText(),
        modelFingerprint);
    ValidationException.check(
        hessianUser.isEmpty() || manifest.path("hessian").asBoolean(false),
        "Cannot use --stats %s for %s: they hold no X^T X (save them with --method sparsegpt)",
        directory, hessianUser.orElse(""));
    List<String> keys = new java.util.ArrayList<>();
    manifest.path("keys").forEach(key -> keys.add(key.asText()));
    return keys;
  }
}
