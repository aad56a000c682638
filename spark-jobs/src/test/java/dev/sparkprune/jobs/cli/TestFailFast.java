package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.text.TextSource;
import dev.sparkprune.tensorio.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad input that the driver can see in headers, small files and options is refused in one
 * line, exit 2, before any SparkSession exists: each case checks that none was created.
 */
class TestFailFast {
  @TempDir Path dir;

  /** A session an earlier suite left as the default, set aside so that a new one would show. */
  private Optional<SparkSession> earlier = Optional.empty();

  @BeforeEach
  void setAsideTheDefaultSession() {
    earlier = toOptional(SparkSession.getDefaultSession());
    SparkSession.clearDefaultSession();
    SparkSession.clearActiveSession();
  }

  @AfterEach
  void restoreTheDefaultSession() {
    earlier.ifPresent(SparkSession::setDefaultSession);
  }

  private static Optional<SparkSession> toOptional(scala.Option<SparkSession> option) {
    return option.isDefined() ? Optional.of(option.get()) : Optional.empty();
  }

  /** Runs prune with the given extra arguments and checks one line, exit 2, and no Spark. */
  private void assertRefusedBeforeSpark(String expected, String... args) {
    List<String> all = new ArrayList<>(List.of("prune", "--out", dir.resolve("out").toString()));
    all.addAll(List.of(args));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(all.toArray(String[]::new), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    String stderr = err.toString(StandardCharsets.UTF_8);
    assertThat(code).as(stderr).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(stderr).startsWith("sparkprune: error: ").contains(expected);
    assertThat(stderr.strip().lines()).hasSize(1);
    assertThat(toOptional(SparkSession.getDefaultSession())).as("a SparkSession was created for: %s", expected).isEmpty();
    assertThat(toOptional(SparkSession.getActiveSession())).isEmpty();
    assertThat(dir.resolve("out")).doesNotExist();
  }

  private Path copyOfStories260K(String name) throws IOException {
    Path copy = Files.createDirectories(dir.resolve(name));
    try (Stream<Path> files = Files.list(SharedData.stories260K())) {
      for (Path file : (Iterable<Path>) files::iterator) {
        Files.copy(file, copy.resolve(file.getFileName()));
      }
    }
    return copy;
  }

  @Test
  void aBrokenArchiveIsRefusedBeforeSparkStarts() throws IOException {
    Path archive = copyOfStories260K("broken");
    byte[] bytes = Files.readAllBytes(archive.resolve("model.safetensors"));
    bytes[8] = 'x'; // the header's JSON no longer opens with '{'
    Files.write(archive.resolve("model.safetensors"), bytes);
    String text = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    assertRefusedBeforeSpark("Invalid safetensors header in " + archive.resolve("model.safetensors") + ": not valid JSON",
        "--model", archive.toString(), "--method", "wanda", "--calib", text, "--seqlen", "64");
  }

  @Test
  void badOptionsAndCalibrationSourcesAreRefusedBeforeSparkStarts() throws IOException {
    String model = SharedData.stories260K().toString();
    String text = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    assertRefusedBeforeSpark("Invalid --master banana://x: use local[N], local[*], spark://HOST:PORT, yarn or k8s://URL",
        "--model", model, "--method", "magnitude", "--master", "banana://x");
    assertRefusedBeforeSpark("Invalid --seqlen 1024: the model supports at most 512 positions (max_position_embeddings in config.json)",
        "--model", model, "--method", "wanda", "--calib", text, "--seqlen", "1024");
    assertRefusedBeforeSpark("Invalid --nsamples 2147483647: 2147483647 samples x --seqlen 2048 = 4398046509056 calibration tokens, over the limit of "
        + PruneOptions.MAX_CALIBRATION_TOKENS, "--model", model, "--method", "wanda", "--calib", text, "--nsamples", "2147483647");

    Path garbage = dir.resolve("calib.parquet");
    Files.write(garbage, "PAR1 this is not a Parquet file, only its first magic bytes".getBytes(StandardCharsets.UTF_8));
    assertRefusedBeforeSpark("Invalid Parquet file:" + garbage, "--model", model, "--method", "wanda", "--calib", garbage.toString(),
        "--seqlen", "64", "--nsamples", "2");
    assertRefusedBeforeSpark("Cannot read text /dev/zero: file:/dev/zero is not a regular file", "--model", model, "--method", "wanda",
        "--calib", "/dev/zero", "--seqlen", "64", "--nsamples", "2");

    // A sparse file: 1 GiB and a byte long, beyond what 256 Mi characters can take even at 4 bytes each; nothing is read.
    Path huge = dir.resolve("huge.txt");
    try (java.io.RandomAccessFile file = new java.io.RandomAccessFile(huge.toFile(), "rw")) {
      file.setLength(4 * TextSource.MAX_CHARS + 1);
    }
    assertRefusedBeforeSpark("Cannot read text " + huge + ": " + (4 * TextSource.MAX_CHARS + 1) + " bytes, over the limit of "
        + TextSource.MAX_CHARS + " characters", "--model", model, "--method", "wanda", "--calib", huge.toString(), "--seqlen", "64",
        "--nsamples", "2");
  }

  @Test
  void aTokenizerWithIdsBeyondTheEmbeddingIsRefusedBeforeSparkStarts() throws IOException {
    Path archive = copyOfStories260K("other-tokenizer");
    ObjectMapper json = new ObjectMapper();
    ObjectNode tokenizer = (ObjectNode) json.readTree(archive.resolve("tokenizer.json").toFile());
    // As a tokenizer of a larger vocabulary would: an added token right after the model's 512
    // embedding rows (ids stay contiguous, so the tokenizer itself is valid).
    ((ArrayNode) tokenizer.get("added_tokens")).addObject().put("id", 512).put("content", "<extra>").put("special", true);
    json.writeValue(archive.resolve("tokenizer.json").toFile(), tokenizer);
    String text = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    assertRefusedBeforeSpark(
        "Invalid tokenizer " + archive + "/tokenizer.json: it has token ids up to 512, but the model has 512 embedding rows",
        "--model", archive.toString(), "--method", "wanda", "--calib", text, "--seqlen", "64", "--nsamples", "2");
  }

  @Test
  void anExpertTaskThatCannotFitTheHeapIsRefusedBeforeSparkStarts() {
    String model = dev.sparkprune.tensorio.ModelFixtures.path("qwen3_moe").toString();
    String text = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    // qwen3_moe: hidden 64, moe_intermediate 32: an expert is 3 x 64 x 32 floats (24,576 bytes)
    // plus Wanda's 16 bytes per input channel of its two inputs (16 x (64 + 32) = 1,536): 26,112 bytes.
    // local-cluster[1, 64, 1]: one 1 MB executor running 64 tasks of 16,384 bytes.
    assertRefusedBeforeSpark("Cannot calibrate model.layers.0: one routed expert with its statistics needs 26,112 bytes but a task has 16,384 bytes of heap "
            + "(1 MB per executor / 64 tasks); raise the executor memory (spark.executor.memory, SPARKPRUNE_HEAP) or run fewer tasks per executor",
        "--model", model, "--method", "wanda", "--calib", text, "--seqlen", "64", "--nsamples", "2", "--master", "local-cluster[1,64,1]");
    // A budget over a task's share of this JVM's heap (local[2]: half of it).
    long task = Runtime.getRuntime().maxMemory() / 2;
    assertRefusedBeforeSpark("Invalid --expert-task-mb 100000: a task has ",
        "--model", model, "--method", "wanda", "--calib", text, "--seqlen", "64", "--nsamples", "2", "--master", "local[2]",
        "--expert-task-mb", "100000");
    assertRefusedBeforeSpark("; set it to at most " + (task >> 20),
        "--model", model, "--method", "wanda", "--calib", text, "--seqlen", "64", "--nsamples", "2", "--master", "local[2]",
        "--expert-task-mb", "100000");
  }
}
