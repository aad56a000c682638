package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.apache.spark.sql.SparkSession;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code sparkprune eval --tasks} through the CLI: the JSON report, and bad input refused before any work. */
class TestTaskEvalCommand {
  @TempDir Path dir;

  private record Result(int code, String out, String err) {}

  private static Result run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  private static String sample(String name) throws URISyntaxException {
    return Path.of(TestTaskEvalCommand.class.getResource("/tasks/" + name + ".jsonl").toURI()).toString();
  }

  @AfterAll
  static void stopSpark() {
    SparkSession.getActiveSession().foreach(session -> {
      session.stop();
      return null;
    });
  }

  @Test
  void printsAndWritesTheJsonReportPerTask() throws Exception {
    // An earlier report is replaced with --overwrite (without it, see aReportFollowsTheOutputRules).
    Path report = Files.writeString(dir.resolve("report.json"), "{\"an\": \"earlier report\"}");
    Result result = run("eval", "--model", SharedData.stories260K().toString(), "--tasks", sample("generic") + "," + sample("boolq"),
        "--partitions", "2", "--pass-size", "3", "--master", "local[2]", "--json", "--report", report.toString(), "--overwrite");
    assertThat(result.code()).as(result.err()).isZero();
    JsonNode json = new ObjectMapper().readTree(result.out());
    assertThat(new ObjectMapper().readTree(report.toFile())).isEqualTo(json);
    assertThat(json.get("max_length").asInt()).isEqualTo(512);
    assertThat(json.get("partitions").asInt()).isEqualTo(2);
    assertThat(json.get("pass_size").asInt()).isEqualTo(3);
    JsonNode generic = json.get("tasks").get("generic");
    assertThat(generic.get("format").asText()).isEqualTo("generic");
    assertThat(generic.get("documents").asInt()).isEqualTo(2);
    assertThat(generic.get("requests").asInt()).isEqualTo(5);
    assertThat(generic.get("acc").asDouble()).isIn(0.0, 0.5, 1.0);
    assertThat(generic.has("acc_norm")).isTrue();
    // Two documents: sqrt(p (1 - p) / (n - 1)).
    double acc = generic.get("acc").asDouble();
    assertThat(generic.get("acc_stderr").asDouble()).isCloseTo(Math.sqrt(acc * (1 - acc)), Offset.offset(1e-12));
    JsonNode boolq = json.get("tasks").get("boolq");
    assertThat(boolq.get("format").asText()).isEqualTo("boolq");
    assertThat(boolq.has("acc")).isTrue();
    assertThat(boolq.has("acc_norm")).as("lm-eval reports acc only for boolq").isFalse();
  }

  /** Zero-shot tasks on the DeepSeek-V3, GLM-4.5 and gpt-oss fixtures: the giant-MoE forwards through the task job. */
  @Test
  void scoresTasksOnTheGiantMoeFixtures() throws Exception {
    for (String arch : new String[] {"deepseek_v3", "glm4_moe", "gpt_oss"}) {
      Result result = run("eval", "--model", SharedData.path("fixtures/models/" + arch).toString(), "--tasks", sample("generic"),
          "--partitions", "2", "--master", "local[2]", "--json");
      assertThat(result.code()).as("%s: %s", arch, result.err()).isZero();
      JsonNode generic = new ObjectMapper().readTree(result.out()).get("tasks").get("generic");
      assertThat(generic.get("requests").asInt()).as(arch).isEqualTo(5);
      assertThat(generic.get("acc").asDouble()).as(arch).isIn(0.0, 0.5, 1.0);
    }
  }

  @Test
  void badRowsAndReportPathsAreOneLineErrorsWithNothingWritten() throws IOException {
    Path bad = Files.writeString(dir.resolve("bad.jsonl"), "{\"context\": \"c\", \"choices\": [\"a\", \"b\"], \"label\": 2}\n");
    Path report = dir.resolve("report.json");
    Result result = run("eval", "--model", SharedData.stories260K().toString(), "--tasks", bad.toString(), "--report", report.toString());
    assertThat(result.code()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(result.err().strip())
        .isEqualTo("sparkprune: error: Invalid task file " + bad + " line 1: Invalid label 2: the document has 2 choices (labels 0 to 1)");
    assertThat(report).doesNotExist();

    // A folder that holds no input (dir holds the task file, which is refused first: aReportFollowsTheOutputRules).
    Path reports = Files.createDirectories(dir.resolve("reports"));
    Result folder = run("eval", "--model", SharedData.stories260K().toString(), "--tasks", bad.toString(), "--report", reports.toString());
    assertThat(folder.code()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(folder.err().strip()).isEqualTo("sparkprune: error: Invalid --report file:" + reports + ": it is a folder (give a file path)");

    Result format = run("eval", "--model", SharedData.stories260K().toString(), "--tasks", bad.toString(), "--max-length", "600");
    assertThat(format.code()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(format.err().strip()).isEqualTo("sparkprune: error: Invalid --max-length 600: the model supports at most 512 positions");
  }

  /** Runs eval --tasks and checks one line naming {@code expected}, exit 2, before any work (no Spark session). */
  private static void assertRefused(String expected, String... args) {
    scala.Option<SparkSession> before = SparkSession.getActiveSession();
    Result result = run(args);
    assertThat(result.code()).as(result.err()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(result.err()).startsWith("sparkprune: error: ").contains(expected);
    assertThat(result.err().strip().lines()).hasSize(1);
    assertThat(SparkSession.getActiveSession().isDefined()).as("a Spark session started").isEqualTo(before.isDefined());
  }

  /**
   * --report is an output like --out: never the model or a task file, nor inside the model, in any
   * spelling or through a symbolic link; an existing file only with --overwrite; a folder that
   * cannot be written is refused before the evaluation, not after it. Every refused case leaves
   * the files byte for byte.
   */
  @Test
  void aReportFollowsTheOutputRules() throws Exception {
    Path model = dev.sparkprune.jobs.FolderSnapshot.copyFiles(SharedData.stories260K(), dir.resolve("model"));
    Map<String, byte[]> dense = dev.sparkprune.jobs.FolderSnapshot.of(model);
    Path tasks = Files.copy(Path.of(sample("generic")), dir.resolve("tasks.jsonl"));
    byte[] taskBytes = Files.readAllBytes(tasks);
    Path link = Files.createSymbolicLink(dir.resolve("link.json"), tasks);
    String[] base = {"eval", "--model", model.toString(), "--tasks", tasks.toString(), "--report"};

    assertRefused("Invalid --report file:" + model.resolve("config.json") + ": it lies inside --model file:" + model, concat(base, model.resolve("config.json")));
    assertRefused("Invalid --report file:" + model.resolve("model.safetensors") + ": it lies inside --model file:" + model,
        concat(base, model.resolve("model.safetensors")));
    assertRefused("Invalid --report file:" + link + ": it is the same file as --tasks " + tasks, concat(base, link));
    assertRefused("Invalid --report file:" + dir + "/tasks.jsonl: it is the same file as --tasks " + tasks, concat(base, dir + "/./tasks.jsonl"));
    assertThat(dev.sparkprune.jobs.FolderSnapshot.of(model)).containsOnlyKeys(dense.keySet())
        .allSatisfy((name, bytes) -> assertThat(bytes).isEqualTo(dense.get(name)));
    assertThat(Files.readAllBytes(tasks)).isEqualTo(taskBytes);

    Path mine = Files.writeString(dir.resolve("mine.json"), "my notes");
    assertRefused("Cannot replace --report file:" + mine + ": the file exists; add --overwrite to replace it, or choose another file",
        concat(base, mine));
    // --overwrite allows replacing a file, never an input.
    assertRefused("Invalid --report file:" + link + ": it is the same file as --tasks " + tasks,
        "eval", "--model", model.toString(), "--tasks", tasks.toString(), "--overwrite", "--report", link.toString());
    assertThat(Files.readString(mine)).isEqualTo("my notes");

    // /proc/sys refuses new files even to root (procfs); a read-only mount does the same.
    Path readOnly = Path.of("/proc/sys");
    org.junit.jupiter.api.Assumptions.assumeFalse(Files.isWritable(readOnly), "/proc/sys is writable here");
    assertRefused("Cannot write --report file:" + readOnly.resolve("report.json") + ": permission denied on file:" + readOnly,
        concat(base, readOnly.resolve("report.json")));
  }

  /** "--tasks ," named no file and printed an empty table with exit 0. */
  @Test
  void anEmptyTaskListIsRefused() {
    for (String tasks : new String[] {",", "a.jsonl,", ",,"}) {
      assertRefused("Invalid --tasks: " + tasks + " (a comma-separated list of JSONL files)",
          "eval", "--model", SharedData.stories260K().toString(), "--tasks", tasks);
    }
  }

  private static String[] concat(String[] base, Object last) {
    String[] all = java.util.Arrays.copyOf(base, base.length + 1);
    all[base.length] = last.toString();
    return all;
  }
}
