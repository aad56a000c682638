package dev.sparkprune.jobs.prune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A manifest of models pruned in one batch: a corrupt shard fails its model only. */
class TestBatchJob extends SparkTestBase {
  @TempDir Path dir;

  private List<Row> run(Path manifest, Path outRoot) throws IOException {
    return new BatchJob(spark, manifest.toString(), outRoot.toString(), new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
  }

  private static List<String> statuses(List<Row> rows) {
    return rows.stream().map(row -> row.getString(0) + "=" + row.getString(2)).toList();
  }

  @Test
  void corruptShardFailsItsModelOnlyAndRerunsSkipCommittedOutputs() throws IOException {
    Path corrupt = dir.resolve("corrupt-model");
    Files.createDirectories(corrupt);
    try (Stream<Path> files = Files.list(SharedData.stories260K())) {
      for (Path file : (Iterable<Path>) files::iterator) {
        Files.copy(file, corrupt.resolve(file.getFileName()));
      }
    }
    try (FileChannel channel = FileChannel.open(corrupt.resolve("model.safetensors"), StandardOpenOption.WRITE)) {
      channel.truncate(channel.size() / 2);
    }
    String stories = SharedData.stories260K().toString();
    String calib = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    Path manifest = dir.resolve("manifest.jsonl");
    Files.writeString(manifest, String.join("\n",
        "{\"model\": \"" + stories + "\", \"name\": \"magnitude\", \"method\": \"magnitude\", \"sparsity\": 0.5}",
        "{\"model\": \"" + corrupt + "\", \"name\": \"corrupt\", \"method\": \"magnitude\"}",
        "{\"model\": \"" + stories + "\", \"name\": \"wanda\", \"method\": \"wanda\", \"sparsity\": 0.5, \"calib\": \"" + calib
            + "\", \"nsamples\": 4, \"seqlen\": 64}",
        ""));
    Path outRoot = dir.resolve("out");
    List<Row> first = run(manifest, outRoot);
    assertThat(statuses(first)).containsExactly("magnitude=SUCCEEDED", "corrupt=FAILED", "wanda=SUCCEEDED");
    assertThat(first.get(1).getString(3)).contains("model.safetensors").contains("the file may be truncated");
    assertThat(outRoot.resolve("magnitude/model/model.safetensors")).exists();
    assertThat(outRoot.resolve("wanda/report.json")).exists();
    assertThat(outRoot.resolve("corrupt")).doesNotExist();
    // A failed row names no output where there is none; the others name theirs.
    assertThat(first.get(1).isNullAt(7)).isTrue();
    assertThat(first.get(0).getString(7)).endsWith("/magnitude");
    byte[] wandaBytes = Files.readAllBytes(outRoot.resolve("wanda/model/model.safetensors"));

    List<Row> second = run(manifest, outRoot);
    assertThat(statuses(second)).containsExactly("magnitude=SKIPPED", "corrupt=FAILED", "wanda=SKIPPED");
    assertThat(Files.readAllBytes(outRoot.resolve("wanda/model/model.safetensors"))).isEqualTo(wandaBytes);

    var table = spark.read().parquet(outRoot.resolve("_status").toString());
    assertThat(table.count()).isEqualTo(6);
    assertThat(table.select("run_id").distinct().count()).isEqualTo(2);
    assertThat(table.where("status = 'FAILED'").count()).isEqualTo(2);

    // Changed settings are not skipped.
    Path changed = dir.resolve("changed.jsonl");
    Files.writeString(changed, "{\"model\": \"" + stories + "\", \"name\": \"magnitude\", \"method\": \"magnitude\", \"sparsity\": 0.6}\n");
    assertThat(statuses(run(changed, outRoot))).containsExactly("magnitude=SUCCEEDED");
  }

  @Test
  void badManifestsAreRefused() throws IOException {
    Path manifest = dir.resolve("bad.jsonl");
    Files.writeString(manifest, "{\"model\": \"m\", \"methd\": \"wanda\"}\n");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> run(manifest, dir.resolve("out")))
        .isInstanceOf(dev.sparkprune.tensorio.ValidationException.class)
        .hasMessageContaining("unknown columns [methd]");
    Path duplicate = dir.resolve("dup.csv");
    Files.writeString(duplicate, "model,name,method\na,x,magnitude\nb,x,magnitude\n");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> run(duplicate, dir.resolve("out")))
        .isInstanceOf(dev.sparkprune.tensorio.ValidationException.class)
        .hasMessageContaining("two rows are named 'x'");

    // A bad setting fails its row with the same message as the prune command, never a silent default.
    Path settings = dir.resolve("settings.csv");
    Files.writeString(settings, "model,name,method,mode,allocation\na,m,magnitude,oneshot,uniform\nb,a,magnitude,sequential,globl\n");
    List<Row> rows = run(settings, dir.resolve("settings-out"));
    assertThat(statuses(rows)).containsExactly("m=FAILED", "a=FAILED");
    assertThat(rows.get(0).getString(3)).isEqualTo("Invalid --mode oneshot: use sequential or one-shot");
    assertThat(rows.get(1).getString(3)).isEqualTo("Invalid --allocation globl: use uniform, global, lamp or owl");
  }

  /** The repro: rules.yaml edited in place must not give SKIPPED; the skip key hashes its content. */
  @Test
  void editingTheRulesFileInPlaceRerunsTheModel() throws IOException {
    String stories = SharedData.stories260K().toString();
    Path rules = dir.resolve("rules.yaml");
    Files.writeString(rules, "rules:\n  - match: \"model\\\\.layers\\\\.0\\\\..*\"\n    skip: true\n");
    Path manifest = dir.resolve("rules.jsonl");
    Files.writeString(manifest, "{\"model\": \"" + stories + "\", \"name\": \"ruled\", \"method\": \"magnitude\", \"config\": \"" + rules
        + "\"}\n");
    Path outRoot = dir.resolve("out");
    assertThat(statuses(run(manifest, outRoot))).containsExactly("ruled=SUCCEEDED");
    assertThat(statuses(run(manifest, outRoot))).containsExactly("ruled=SKIPPED");
    String firstKey = new com.fasterxml.jackson.databind.ObjectMapper().readTree(outRoot.resolve("ruled/report.json").toFile())
        .path("configuration").path("settings_key").asText();
    // Same path, other content: layer 1 skipped instead of layer 0.
    Files.writeString(rules, "rules:\n  - match: \"model\\\\.layers\\\\.1\\\\..*\"\n    skip: true\n");
    List<Row> edited = run(manifest, outRoot);
    assertThat(statuses(edited)).containsExactly("ruled=SUCCEEDED");
    String secondKey = new com.fasterxml.jackson.databind.ObjectMapper().readTree(outRoot.resolve("ruled/report.json").toFile())
        .path("configuration").path("settings_key").asText();
    assertThat(secondKey).isNotEqualTo(firstKey).contains(rules + "@sha256:");
    assertThat(edited.get(0).getString(6)).isEqualTo(secondKey);
  }

  /**
   * Every prune option is a manifest column under its CLI name, parsed and checked as the CLI
   * does; pre-tokenized Parquet rows give --seqlen their length when the row does not set it.
   */
  @Test
  void manifestColumnsAreTheCliOptionsAndPreTokenizedRowsGiveTheSeqlen() throws IOException {
    assertThat(BatchJob.COLUMNS).contains("name", "min-keep", "owl-lambda", "gpus-per-task", "dsnot-skip", "save-stats", "overwrite")
        .doesNotContain("out", "min_keep");
    HadoopFileIO io = new HadoopFileIO(new org.apache.hadoop.conf.Configuration());
    String stories = SharedData.stories260K().toString();
    Tokenizer tokenizer = TokenizerLoader.load(ModelArchive.open(io, stories));
    int[][] rows = dev.sparkprune.jobs.calibration.CalibrationSamples.sample(io, SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), tokenizer, 6, 128, 5);
    List<Row> records = new java.util.ArrayList<>();
    for (int[] row : rows) {
      records.add(org.apache.spark.sql.RowFactory.create((Object) java.util.Arrays.stream(row).boxed().toArray(Integer[]::new)));
    }
    Path parquet = dir.resolve("calib-128");
    spark.createDataFrame(records, new org.apache.spark.sql.types.StructType().add("input_ids",
        org.apache.spark.sql.types.DataTypes.createArrayType(org.apache.spark.sql.types.DataTypes.IntegerType)))
        .coalesce(1).write().parquet(parquet.toString());

    Path manifest = dir.resolve("columns.jsonl");
    Files.writeString(manifest, String.join("\n",
        "{\"model\": \"" + stories + "\", \"name\": \"rows\", \"method\": \"wanda\", \"calib\": \"" + parquet + "\", \"nsamples\": 4, "
            + "\"scoring-task-mb\": 1, \"moe-calibration\": \"all\", \"group\": \"row\"}",
        "{\"model\": \"" + stories + "\", \"name\": \"typo\", \"method\": \"magnitude\", \"nsamples\": \"abc\"}",
        "{\"model\": \"" + stories + "\", \"name\": \"both\", \"method\": \"magnitude\", \"sparsity\": 0.5, \"pattern\": \"2:4\"}",
        "{\"model\": \"" + stories + "\", \"name\": \"flag\", \"method\": \"magnitude\", \"save-stats\": \"maybe\"}",
        ""));
    List<Row> statuses = run(manifest, dir.resolve("columns-out"));
    assertThat(statuses(statuses)).containsExactly("rows=SUCCEEDED", "typo=FAILED", "both=FAILED", "flag=FAILED");
    assertThat(statuses.get(1).getString(3)).isEqualTo("Invalid --nsamples abc: must be a positive integer");
    assertThat(statuses.get(2).getString(3)).isEqualTo("Give either --sparsity or --pattern, not both");
    assertThat(statuses.get(3).getString(3)).isEqualTo("Invalid --save-stats maybe: use true or false");
    var report = new com.fasterxml.jackson.databind.ObjectMapper().readTree(dir.resolve("columns-out/rows/report.json").toFile());
    // The rows written above are 128 ids long; no row or conf gave --seqlen.
    assertThat(report.path("configuration").path("seqlen").asInt()).isEqualTo(128);
    assertThat(report.path("configuration").path("nsamples").asInt()).isEqualTo(4);
  }

  @Test
  void aNameThatEscapesTheOutRootFailsTheWholeBatchBeforeAnyModelRuns() throws IOException {
    String stories = SharedData.stories260K().toString();
    Path victim = Files.createDirectories(dir.resolve("victim"));
    Files.writeString(victim.resolve("data.txt"), "precious");
    Path manifest = dir.resolve("escape.jsonl");
    Files.writeString(manifest, String.join("\n",
        "{\"model\": \"" + stories + "\", \"name\": \"fine\", \"method\": \"magnitude\"}",
        "{\"model\": \"" + stories + "\", \"name\": \"../victim\", \"method\": \"magnitude\"}", ""));
    Path outRoot = dir.resolve("out-root");
    assertThatThrownBy(() -> run(manifest, outRoot))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid manifest %s: row 2 name '../victim' contains '/'; a name is one folder name under --out-root", manifest);
    assertThat(Files.readString(victim.resolve("data.txt"))).isEqualTo("precious");
    try (Stream<Path> files = Files.list(victim)) {
      assertThat(files).hasSize(1);
    }
    // Nothing ran: not even the valid first row.
    assertThat(outRoot).doesNotExist();
  }

  /**
   * Every row is planned before any model runs: a row whose expert budget is over a task's share
   * of this session's executor (local[2]: half the heap) refuses the batch in one line naming the
   * row, and the valid first row never runs.
   */
  @Test
  void aRowWhosePlanCannotFitRefusesTheBatchBeforeAnyModelRuns() throws IOException {
    String stories = SharedData.stories260K().toString();
    String moe = dev.sparkprune.tensorio.ModelFixtures.path("qwen3_moe").toString();
    String text = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    Path manifest = dir.resolve("plan.jsonl");
    Files.writeString(manifest, String.join("\n",
        "{\"model\": \"" + stories + "\", \"name\": \"fine\", \"method\": \"magnitude\"}",
        "{\"model\": \"" + moe + "\", \"name\": \"huge\", \"method\": \"wanda\", \"calib\": \"" + text + "\", \"nsamples\": 2, "
            + "\"seqlen\": 64, \"expert-task-mb\": 100000}", ""));
    Path outRoot = dir.resolve("out-root");
    long task = Runtime.getRuntime().maxMemory() / 2;
    assertThatThrownBy(() -> run(manifest, outRoot))
        .isInstanceOf(ValidationException.class)
        .hasMessageStartingWith("Cannot run batch row 2 (huge): Invalid --expert-task-mb 100000: a task has ")
        .hasMessageEndingWith("; set it to at most " + (task >> 20))
        .hasMessageNotContaining("\n");
    assertThat(outRoot).doesNotExist();
  }

  @Test
  void namesAreOneSafeFolderName() {
    Map<String, String> problems = new java.util.LinkedHashMap<>();
    for (String bad : List.of("", " ", ".", "..", "a/b", "a\\b", "s3a:x", "tab\tname", "bell\u0007", " padded", "_status", "_STATUS",
        "m.staging-1", "m.replaced-1", "m.publish-lock", "x".repeat(201))) {
      problems.put(bad, BatchJob.nameProblem(bad));
    }
    assertThat(problems).allSatisfy((name, problem) -> assertThat(problem).as("'%s'", name).isNotNull());
    assertThat(problems.get("..")).isEqualTo("is not a folder name");
    assertThat(problems.get("a\\b")).isEqualTo("contains '\\'");
    assertThat(problems.get("_status")).isEqualTo("is the status table's folder");
    // A right-to-left override shows "report\u202Efdp.exe" as "reportexe.pdf": invisible format characters are refused.
    assertThat(BatchJob.nameProblem("report\u202Efdp.exe")).isEqualTo("contains the invisible formatting character U+202E");
    assertThat(BatchJob.nameProblem("zero\u200Bwidth")).isEqualTo("contains the invisible formatting character U+200B");
    for (String good : List.of("llama-7b", "Qwen2.5-0.5B", "model_v1", ".hidden", "a.b", "名前", "x".repeat(200))) {
      assertThat(BatchJob.nameProblem(good)).as(good).isNull();
    }
  }

  @Test
  void outputsThatAreAnInputOrAnotherFolderAreRefusedUnlessOverwrite() throws IOException {
    String stories = SharedData.stories260K().toString();
    Path outRoot = Files.createDirectories(dir.resolve("root"));
    Path model = dev.sparkprune.jobs.FolderSnapshot.copyFiles(SharedData.stories260K(), outRoot.resolve("llama"));
    Map<String, byte[]> dense = dev.sparkprune.jobs.FolderSnapshot.of(model);
    // A row whose output is another row's model.
    Path clash = dir.resolve("clash.jsonl");
    Files.writeString(clash, "{\"model\": \"" + model + "\", \"name\": \"pruned\", \"method\": \"magnitude\"}\n"
        + "{\"model\": \"" + stories + "\", \"name\": \"llama\", \"method\": \"magnitude\"}\n");
    assertThatThrownBy(() -> run(clash, outRoot))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Invalid output of row 2 " + model + ": it is the same folder as model of row 1 " + model);
    // The manifest's own folder is an input too, with a row defaulting its name from the model folder.
    Path inside = dir.resolve("inside.csv");
    Files.writeString(inside, "model,method\n" + model + ",magnitude\n");
    assertThatThrownBy(() -> run(inside, outRoot))
        .isInstanceOf(ValidationException.class).hasMessageContaining("it is the same folder as model of row 1");
    assertThatThrownBy(() -> run(inside, model))
        .isInstanceOf(ValidationException.class).hasMessageContaining("lies inside model of row 1");
    assertThat(dev.sparkprune.jobs.FolderSnapshot.of(model)).containsOnlyKeys(dense.keySet())
        .allSatisfy((name, bytes) -> assertThat(bytes).isEqualTo(dense.get(name)));

    // A folder that is not a sparkprune output is replaced only with overwrite = true.
    Path mine = Files.createDirectories(outRoot.resolve("mine"));
    Files.writeString(mine.resolve("notes.txt"), "mine");
    Path manifest = dir.resolve("mine.csv");
    Files.writeString(manifest, "model,name,method\n" + stories + ",mine,magnitude\n");
    assertThatThrownBy(() -> run(manifest, outRoot))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Cannot replace output of row 1 " + mine + ": it exists and is not a sparkprune output");
    assertThat(Files.readString(mine.resolve("notes.txt"))).isEqualTo("mine");
    Files.writeString(manifest, "model,name,method,overwrite\n" + stories + ",mine,magnitude,true\n");
    assertThat(statuses(run(manifest, outRoot))).containsExactly("mine=SUCCEEDED");
    assertThat(mine.resolve("notes.txt")).doesNotExist();
    assertThat(mine.resolve("model/model.safetensors")).isRegularFile();
  }

  /**
   * The status table is an output: a {@code _status} folder sparkprune did not write (a user's
   * {@code _SUCCESS}) or a {@code _status} file fails the batch before any model runs, leaving it as
   * it was; one the batch wrote carries its marker and takes the next run's rows.
   */
  @Test
  void theStatusTableIsWrittenOnlyWhenItIsSparkprunesOwn() throws IOException {
    String stories = SharedData.stories260K().toString();
    Path manifest = dir.resolve("one.jsonl");
    Files.writeString(manifest, "{\"model\": \"" + stories + "\", \"name\": \"pruned\", \"method\": \"magnitude\"}\n");

    Path userRoot = Files.createDirectories(dir.resolve("user-root/_status"));
    Files.writeString(userRoot.resolve("_SUCCESS"), "the user's own marker");
    assertThatThrownBy(() -> run(manifest, dir.resolve("user-root")))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot write into status table %s: it exists and is not a sparkprune output (no _SPARKPRUNE_SUCCESS); move it away or"
            + " choose another output folder", userRoot);
    assertThat(Files.readString(userRoot.resolve("_SUCCESS"))).isEqualTo("the user's own marker");
    assertThat(dir.resolve("user-root/pruned")).doesNotExist();

    Path fileRoot = Files.createDirectories(dir.resolve("file-root"));
    Files.writeString(fileRoot.resolve("_status"), "not a folder");
    assertThatThrownBy(() -> run(manifest, fileRoot))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid status table %s: it exists and is a file, not a folder; choose another output folder", fileRoot.resolve("_status"));
    assertThat(fileRoot.resolve("pruned")).doesNotExist();

    // A user's hidden checksum file in a row's output is data (the checksummed listing hid it).
    Path crcRoot = Files.createDirectories(dir.resolve("crc-root/pruned"));
    Files.writeString(crcRoot.resolve(".notes.crc"), "mine");
    assertThatThrownBy(() -> run(manifest, dir.resolve("crc-root")))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Cannot replace output of row 1 " + crcRoot + ": it exists and is not a sparkprune output");

    Path root = dir.resolve("root");
    assertThat(statuses(run(manifest, root))).containsExactly("pruned=SUCCEEDED");
    assertThat(root.resolve("_status").resolve(dev.sparkprune.jobs.output.OutputMarker.NAME)).isRegularFile();
    assertThat(statuses(run(manifest, root))).containsExactly("pruned=SKIPPED");
    assertThat(spark.read().parquet(root.resolve("_status").toString()).count()).isEqualTo(2);
    // Someone's file added to the table since: the next batch refuses it up front.
    Files.writeString(root.resolve("_status/notes.txt"), "mine");
    assertThatThrownBy(() -> run(manifest, root)).hasMessageContaining("also holds [notes.txt], which sparkprune did not write");
  }
}
