package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.output.OutputGuard;
import dev.sparkprune.jobs.output.OutputMarker;
import dev.sparkprune.jobs.output.OutputRequest;
import dev.sparkprune.jobs.spark.StagedRun;
import dev.sparkprune.jobs.prune.plan.Fingerprints;
import dev.sparkprune.jobs.plan.ExecutorShape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.calibration.SparkExecutors;
import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.options.Parsers;
import dev.sparkprune.jobs.spark.ValidationFailures;
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
import java.util.Optional;
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
      .add("output", DataTypes.StringType, true)
      .add("finished_at", DataTypes.TimestampType, false)
      .add("run_id", DataTypes.StringType, false);

  private static final ObjectMapper JSON = new ObjectMapper();
  /** A manifest has one small row per model; a larger file is not one. */
  static final long MAX_MANIFEST_BYTES = 64L << 20;
  /** The status table's folder under --out-root. */
  static final String STATUS = "_status";

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
    checkManifest(io.conf(), manifest);
    List<Row> entries = readManifest(io);
    List<String> names = names(entries);
    checkOutputs(io, entries, names);
    planEach(io, entries, names);
    return StagedRun.start(spark, "batch", manifest).run(run -> pruneEach(run.runId(), io, entries, names));
  }

  /**
   * Plans every row before any model runs ({@link JobInputs#plan}: calibration cache, expert
   * groups, blocks, scoring, on this session's executors): a row whose plan cannot fit refuses the
   * whole batch in one line naming the row, rather than an OutOfMemoryError hours into the batch.
   * A row whose options or model do not resolve is left to its run, which records it as FAILED.
   */
  private void planEach(HadoopFileIO io, List<Row> entries, List<String> names) {
    PruneOptionsResolver resolver = PruneOptionsResolver.on(spark.sparkContext().getConf(), io);
    ExecutorShape executor = SparkExecutors.of(spark.sparkContext().master(), spark.sparkContext().getConf());
    int partitions = spark.sparkContext().defaultParallelism();
    for (int i = 0; i < entries.size(); i++) {
      Optional<String> refusal;
      try {
        refusal = JobInputs.plan(io, resolver.resolve(settings(entries.get(i), io.resolve(outRoot, names.get(i)))), executor, partitions)
            .refusal();
      } catch (Exception e) {
        continue;
      }
      if (refusal.isPresent()) {
        throw new ValidationException(String.format(Locale.ROOT, "Cannot run batch row %d (%s): %s", i + 1, names.get(i), refusal.get()));
      }
    }
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
      // A failed model's row names its output only where one is there (an earlier run's, left in place).
      String output = status.equals("FAILED") && !exists(io, out) ? null : out;
      double seconds = (System.nanoTime() - start) / 1e9;
      progress.printf(Locale.ROOT, "batch %d/%d %s: %s (%.1f s)%s%n", i + 1, entries.size(), name, status, seconds,
          error == null ? "" : ": " + error);
      statuses.add(RowFactory.create(name, model == null ? "" : model, status, error, seconds, fingerprint, settings, output,
          new Timestamp(System.currentTimeMillis()), runId));
    }
    String status = io.resolve(outRoot, STATUS);
    spark.createDataFrame(statuses, STATUS_SCHEMA).coalesce(1).write().mode(SaveMode.Append).partitionBy("run_id").parquet(status);
    // The next batch writes into this table only while it holds what sparkprune wrote and nothing else.
    OutputMarker.mark(io.conf(), status, runId);
    return statuses;
  }

  /**
   * Checks a manifest before Spark starts, so that a malformed one is one line instead of a
   * failed Spark job: a regular file of at most {@value #MAX_MANIFEST_BYTES} bytes; JSONL lines
   * that are JSON objects, CSV that is UTF-8 text with a header, Parquet with a readable footer.
   */
  public static void checkManifest(org.apache.hadoop.conf.Configuration conf, String manifest) throws IOException {
    org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(manifest);
    org.apache.hadoop.fs.FileSystem fs = path.getFileSystem(conf);
    org.apache.hadoop.fs.FileStatus status;
    try {
      status = fs.getFileStatus(path);
    } catch (java.io.FileNotFoundException e) {
      throw new ValidationException("Cannot read --manifest " + manifest + ": file not found");
    }
    ValidationException.check(!status.isDirectory(), "Invalid --manifest %s: it is a folder; give one JSONL, CSV or Parquet file", manifest);
    boolean regular = status.isFile()
        && (!"file".equals(fs.getUri().getScheme()) || java.nio.file.Files.isRegularFile(OutputGuard.localPath(fs.makeQualified(path))));
    ValidationException.check(regular, "Invalid --manifest %s: not a regular file (a device or pipe); give a JSONL, CSV or Parquet file", manifest);
    String lower = manifest.toLowerCase(Locale.ROOT);
    if (lower.endsWith(".parquet")) {
      try {
        org.apache.parquet.hadoop.ParquetFileReader.readFooter(conf, path);
      } catch (IOException | RuntimeException e) {
        throw new ValidationException("Invalid --manifest " + manifest + ": not a readable Parquet file (" + firstLine(e.getMessage()) + ")");
      }
      return;
    }
    ValidationException.check(status.getLen() <= MAX_MANIFEST_BYTES,
        "Invalid --manifest %s: %d bytes, over the limit of %d for a manifest (one row per model)", manifest, status.getLen(), MAX_MANIFEST_BYTES);
    byte[] bytes = dev.sparkprune.tensorio.io.InputFiles.readAll(new HadoopFileIO(conf).newInputFile(manifest), MAX_MANIFEST_BYTES);
    String text;
    try {
      text = java.nio.charset.StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
          .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
    } catch (java.nio.charset.CharacterCodingException e) {
      throw new ValidationException("Invalid --manifest " + manifest + ": not UTF-8 text (a binary file?); give a JSONL, CSV or Parquet file");
    }
    ValidationException.check(text.indexOf('\0') < 0, "Invalid --manifest %s: it holds NUL bytes (a binary file?); give a JSONL, CSV or Parquet file", manifest);
    if (lower.endsWith(".csv")) {
      String header = text.lines().findFirst().orElse("");
      ValidationException.check(!header.isBlank(), "Invalid --manifest %s: no header line (CSV manifests name their columns first)", manifest);
      return;
    }
    int number = 0;
    for (String line : (Iterable<String>) text.lines()::iterator) {
      number++;
      if (line.isBlank()) {
        continue;
      }
      JsonNode row;
      try {
        row = JSON.readTree(line);
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new ValidationException("Invalid --manifest " + manifest + " line " + number + ": not valid JSON (" + e.getOriginalMessage() + ")");
      }
      ValidationException.check(row != null && row.isObject(),
          "Invalid --manifest %s line %d: expected one JSON object per line, found %s", manifest, number, row == null ? "nothing" : row.getNodeType());
    }
  }

  private static String firstLine(String message) {
    return message == null ? "" : message.lines().findFirst().orElse("");
  }

  private List<Row> readManifest(HadoopFileIO io) throws IOException {
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
    // Invisible format characters: a right-to-left override (U+202E) shows "evil\u202Etxt.exe" as "evilexe.txt".
    int format = name.codePoints().filter(c -> Character.getType(c) == Character.FORMAT).findFirst().orElse(-1);
    if (format >= 0) {
      return String.format(Locale.ROOT, "contains the invisible formatting character U+%04X", format);
    }
    if (!name.strip().equals(name)) {
      return "starts or ends with a space";
    }
    if (name.equalsIgnoreCase(STATUS)) {
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
    text.codePoints().forEach(c -> out.append(Character.isISOControl(c) || Character.getType(c) == Character.FORMAT
        ? String.format(Locale.ROOT, "\\u%04x", c) : Character.toString(c)));
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
    // The status table is an output too: never an input, and written into only when sparkprune wrote all of it.
    OutputGuard.check(conf, OutputRequest.appendedFolder("status table", io.resolve(outRoot, STATUS), inputs));
    for (int i = 0; i < entries.size(); i++) {
      OutputGuard.check(conf, OutputRequest.folder("output of row " + (i + 1), io.resolve(outRoot, names.get(i)), overwrite(entries.get(i)), inputs));
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

  private static boolean exists(HadoopFileIO io, String location) {
    try {
      return io.exists(location);
    } catch (IOException | RuntimeException e) {
      return false;
    }
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
    java.util.Optional<ValidationException> validation = ValidationFailures.find(error);
    if (validation.isPresent()) {
      return validation.get().getMessage();
    }
    String message = error.getMessage();
    return error.getClass().getSimpleName() + (message == null ? "" : ": " + message.lines().findFirst().orElse(""));
  }
}
