package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.output.OutputGuard;
import dev.sparkprune.jobs.output.Publisher;
import dev.sparkprune.jobs.spark.StagedRun;
import dev.sparkprune.jobs.prune.plan.Fingerprints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.options.Parsers;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.InputFiles;
import java.io.IOException;
import java.io.PrintStream;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Prunes every model of a manifest (JSONL, CSV with a header, or Parquet; one row per model),
 * each into {@code <out-root>/<name>} as the prune job writes it. A model that fails is recorded
 * as FAILED with its error and the batch goes on; a model whose committed output has the same
 * model fingerprint and settings is SKIPPED. Every run appends one row per model to the
 * Parquet status table {@code <out-root>/_status} (partitioned by run_id).
 */
public final class BatchJob {
  /**
   * Manifest columns: {@code name} (the output folder under --out-root) and every prune setting
   * under its long option's name without dashes ({@code min-keep}), except {@code out}. Only
   * {@code model} and {@code method} are required; flags take true or false.
   */
  static final List<String> COLUMNS = columns();

  private static List<String> columns() {
    List<String> columns = new ArrayList<>(List.of("name"));
    PruneKeys.ALL.stream().map(OptionKey::name).filter(name -> !name.equals(PruneKeys.OUT.name())).forEach(columns::add);
    return List.copyOf(columns);
  }

  static final StructType STATUS_SCHEMA = new StructType()
      .add("name", DataTypes.StringType, false)
      .add("model", DataTypes.StringType, false)
      .add("status", DataTypes.StringType, false)
      .add("error", DataTypes.StringType, true)
      .add("seconds", DataTypes.DoubleType, false)
      .add("model_fingerprint", DataTypes.StringType, true)
      .add("settings", DataTypes.StringType, true)
      .add("output", DataTypes.StringType, false)
      .add("finished_at", DataTypes.TimestampType, false)
      .add("run_id", DataTypes.StringType, false);

  private static final ObjectMapper JSON = new ObjectMapper();

  private final SparkSession spark;
  private final String manifest;
  private final String outRoot;
  private final PrintStream progress;

  public BatchJob(SparkSession spark, String manifest, String outRoot, PrintStream progress) {
    this.spark = spark;
    this.manifest = manifest;
    this.outRoot = outRoot.replaceAll("/+$", "");
    this.progress = progress;
  }

  /** Runs the batch and returns its status rows (also appended to the status table). */
  public List<Row> run() throws IOException {
    HadoopFileIO io = new HadoopFileIO(spark.sparkContext().hadoopConfiguration());
    List<Row> entries = readManifest(io);
    List<String> names = names(entries);
    checkOutputs(io, entries, names);
    return StagedRun.start(spark, "batch", manifest).run(run -> pruneEach(run.runId(), io, entries, names));
  }

  /** Each row's prune run in turn (a failed one is recorded, never fatal), then the status rows appended. */
  private List<Row> pruneEach(String runId, HadoopFileIO io, List<Row> entries, List<String> names) throws IOException {
    PruneOptionsResolver resolver = PruneOptionsResolver.on(spark.sparkContext().getConf(), io);
    List<Row> statuses = new ArrayList<>();
    for (int i = 0; i < entries.size(); i++) {
      Row entry = entries.get(i);
      String model = text(entry, "model");
      String name = names.get(i);
      String out = io.resolve(outRoot, name);
      long start = System.nanoTime();
      String status;
      String error = null;
      String fingerprint = null;
      String settings = null;
      try {
        PruneOptions options = resolver.resolve(settings(entry, out));
        settings = options.settingsKey();
        fingerprint = Fingerprints.model(ModelArchive.open(io, options.model()));
        if (committed(io, out, fingerprint, settings)) {
          status = "SKIPPED";
        } else {
          new PruneJob(spark, options, progress).run();
          status = "SUCCEEDED";
        }
      } catch (Exception e) {
        status = "FAILED";
        error = rootMessage(e);
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      progress.printf(Locale.ROOT, "batch %d/%d %s: %s (%.1f s)%s%n", i + 1, entries.size(), name, status, seconds,
          error == null ? "" : ": " + error);
      statuses.add(RowFactory.create(name, model == null ? "" : model, status, error, seconds, fingerprint, settings, out,
          new Timestamp(System.currentTimeMillis()), runId));
    }
    spark.createDataFrame(statuses, STATUS_SCHEMA).coalesce(1).write().mode(SaveMode.Append).partitionBy("run_id")
        .parquet(io.resolve(outRoot, "_status"));
    return statuses;
  }

  private List<Row> readManifest(HadoopFileIO io) throws IOException {
    ValidationException.check(io.exists(manifest), "Cannot read --manifest %s: file not found", manifest);
    String lower = manifest.toLowerCase(Locale.ROOT);
    Dataset<Row> rows;
    if (lower.endsWith(".parquet")) {
      rows = spark.read().parquet(manifest);
    } else if (lower.endsWith(".csv")) {
      rows = spark.read().option("header", "true").csv(manifest);
    } else {
      rows = spark.read().option("mode", "FAILFAST").json(manifest);
    }
    Set<String> unknown = new java.util.TreeSet<>(List.of(rows.columns()));
    unknown.removeAll(COLUMNS);
    ValidationException.check(unknown.isEmpty(), "Invalid manifest %s: unknown columns %s; columns are prune's long options without "
        + "dashes, such as min-keep (known: %s)", manifest, unknown, COLUMNS);
    ValidationException.check(List.of(rows.columns()).contains("model"), "Invalid manifest %s: no 'model' column", manifest);
    List<Row> entries = rows.collectAsList();
    ValidationException.check(!entries.isEmpty(), "Invalid manifest %s: no rows", manifest);
    return entries;
  }

  /** One manifest row as the settings the resolver takes, as the CLI gives them; bad values fail that row only. */
  private static java.util.Map<String, String> settings(Row entry, String out) {
    java.util.Map<String, String> settings = new java.util.LinkedHashMap<>();
    for (String column : entry.schema().fieldNames()) {
      String value = text(entry, column);
      if (value != null && !column.equals("name")) {
        settings.put(column, value);
      }
    }
    settings.put(PruneKeys.OUT.name(), out);
    return settings;
  }

  /**
   * Each row's output folder name, validated up front: one safe path segment that is neither a
   * status table nor a publish sibling name, distinct across the manifest (ignoring case, as some
   * file systems do). A bad name fails the whole batch before any model runs.
   */
  private List<String> names(List<Row> entries) {
    List<String> names = new ArrayList<>();
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < entries.size(); i++) {
      String model = text(entries.get(i), "model");
      String name = text(entries.get(i), "name");
      if (name == null && model != null) {
        name = model.replaceAll("/+$", "").replaceAll(".*/", "");
      }
      name = name == null ? "row-" + (i + 1) : name;
      String problem = nameProblem(name);
      ValidationException.check(problem == null, "Invalid manifest %s: row %d name '%s' %s; a name is one folder name under --out-root",
          manifest, i + 1, printable(name), problem);
      ValidationException.check(seen.add(name.toLowerCase(Locale.ROOT)),
          "Invalid manifest %s: two rows are named '%s' (row %d repeats it, ignoring case); give them distinct name values", manifest, name, i + 1);
      names.add(name);
    }
    return names;
  }

  /** Why a name is not one safe folder name, or null. */
  static String nameProblem(String name) {
    if (name.isBlank()) {
      return "is empty";
    }
    if (name.equals(".") || name.equals("..")) {
      return "is not a folder name";
    }
    for (String forbidden : List.of("/", "\\", ":")) {
      if (name.contains(forbidden)) {
        return "contains '" + forbidden + "'";
      }
    }
    if (name.chars().anyMatch(c -> Character.isISOControl(c))) {
      return "contains a control character";
    }
    if (!name.strip().equals(name)) {
      return "starts or ends with a space";
    }
    if (name.equalsIgnoreCase("_status")) {
      return "is the status table's folder";
    }
    for (String reserved : List.of(".staging-", ".replaced-", ".publish-lock")) {
      if (name.contains(reserved)) {
        return "contains '" + reserved + "', which names the publish step's sibling folders";
      }
    }
    return name.length() > 200 ? "is longer than 200 characters" : null;
  }

  private static String printable(String text) {
    StringBuilder out = new StringBuilder();
    text.codePoints().forEach(c -> out.append(Character.isISOControl(c) ? String.format(Locale.ROOT, "\\u%04x", c) : Character.toString(c)));
    return out.toString();
  }

  /**
   * Up front, for every row: its output neither is, contains nor lies inside any input of the
   * manifest (or the manifest), and may be replaced; so is the status table.
   */
  private void checkOutputs(HadoopFileIO io, List<Row> entries, List<String> names) throws IOException {
    java.util.Map<String, String> inputs = new java.util.LinkedHashMap<>();
    inputs.put("--manifest", manifest);
    for (int i = 0; i < entries.size(); i++) {
      for (String column : List.of("model", "calib", "stats", "config")) {
        String location = text(entries.get(i), column);
        if (location != null) {
          inputs.put(column + " of row " + (i + 1), location);
        }
      }
    }
    org.apache.hadoop.conf.Configuration conf = io.conf();
    String status = io.resolve(outRoot, "_status");
    OutputGuard.checkSeparate(conf, "status table", status, inputs);
    org.apache.hadoop.fs.Path statusPath = new org.apache.hadoop.fs.Path(status);
    OutputGuard.checkParent(statusPath.getFileSystem(conf), statusPath, "--out-root " + outRoot);
    for (int i = 0; i < entries.size(); i++) {
      String out = io.resolve(outRoot, names.get(i));
      String label = "output of row " + (i + 1);
      OutputGuard.checkSeparate(conf, label, out, inputs);
      org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(out);
      OutputGuard.checkReplaceable(path.getFileSystem(conf), path, label + " " + out, overwrite(entries.get(i)));
      Publisher.checkNotLocked(conf, path);
    }
  }

  /** The optional {@code overwrite} column: true or false, as the resolver reads it. */
  private static boolean overwrite(Row entry) {
    String text = text(entry, PruneKeys.OVERWRITE.name());
    if (text == null) {
      return false;
    }
    try {
      return Parsers.FLAG.parse(text.trim());
    } catch (ValidationException e) {
      throw new ValidationException("Invalid manifest overwrite " + text + ": " + e.getMessage());
    }
  }

  private static String text(Row row, String column) {
    if (!List.of(row.schema().fieldNames()).contains(column)) {
      return null;
    }
    Object value = row.get(row.fieldIndex(column));
    return value == null ? null : value.toString();
  }

  /** Whether {@code out} holds a committed output of the same model and settings. */
  private static boolean committed(HadoopFileIO io, String out, String fingerprint, String settings) throws IOException {
    String report = io.resolve(out, "report.json");
    if (!io.exists(report)) {
      return false;
    }
    JsonNode json = JSON.readTree(InputFiles.readAll(io.newInputFile(report), 64L << 20));
    return fingerprint.equals(json.path("model").path("fingerprint").asText())
        && settings.equals(json.path("configuration").path("settings_key").asText());
  }

  private static String rootMessage(Throwable error) {
    for (Throwable cause = error; cause != null; cause = cause.getCause()) {
      if (cause instanceof ValidationException) {
        return cause.getMessage();
      }
    }
    String message = error.getMessage();
    return error.getClass().getSimpleName() + (message == null ? "" : ": " + message.lines().findFirst().orElse(""));
  }
}
