package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.plan.Fingerprints;
import dev.sparkprune.jobs.text.TextSource;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
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
import org.apache.hadoop.conf.Configuration;
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

  /** A grads.json as --save-grads writes it, with the given fingerprint, scale and tensors. */
  private Path gradientSet(String name, String fingerprint, double scale, List<String> tensors) throws IOException {
    Path set = Files.createDirectories(dir.resolve(name));
    ObjectMapper json = new ObjectMapper();
    ObjectNode manifest = json.createObjectNode().put("format", "sparkprune-gradient-set").put("version", 1)
        .put("model_fingerprint", fingerprint).put("loss", "causal-lm-mean-cross-entropy").put("scale", scale);
    tensors.forEach(manifest.putArray("tensors")::add);
    json.writeValue(set.resolve("grads.json").toFile(), manifest);
    return set;
  }

  @Test
  void gradientMethodsWithoutUsableGradientsAreRefusedBeforeSparkStarts() throws IOException {
    String model = SharedData.stories260K().toString();
    String text = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    Path stats = Files.createDirectories(dir.resolve("stats"));
    assertRefusedBeforeSpark("Cannot use --stats " + stats + " with --method gblm alone: statistics saved by --save-stats come from a"
        + " forward-only run and hold no gradients; add --grads URI (saved by --save-grads), or calibrate with --calib instead",
        "--model", model, "--method", "gblm", "--stats", stats.toString());
    assertRefusedBeforeSpark("Missing --calib for --method prunerzero: its gradients come from a backward pass over calibration text"
        + " (or give --grads)", "--model", model, "--method", "prunerzero");
    assertRefusedBeforeSpark("Invalid --gradient-norm l3: use l2 or l1", "--model", model, "--method", "gblm", "--calib", text,
        "--gradient-norm", "l3");

    String fingerprint = Fingerprints.model(ModelArchive.open(new HadoopFileIO(new Configuration()), model));
    List<String> tensors = new ArrayList<>();
    Architectures.layout(ModelArchive.open(new HadoopFileIO(new Configuration()), model)).linears()
        .forEach(linear -> tensors.add(linear.tensorName()));
    Path empty = Files.createDirectories(dir.resolve("empty"));
    assertRefusedBeforeSpark("Invalid --grads " + empty + ": no grads.json (was it written with --save-grads?)",
        "--model", model, "--method", "gblm", "--calib", text, "--grads", empty.toString());
    Path other = gradientSet("other-model", "0".repeat(64), 100, tensors);
    assertRefusedBeforeSpark("Cannot use --grads " + other + ": the gradients were computed for a different model (fingerprint "
        + "0".repeat(64) + ", this model " + fingerprint + ")", "--model", model, "--method", "prunerzero", "--grads", other.toString());
    Path scaled = gradientSet("other-scale", fingerprint, 1, tensors);
    assertRefusedBeforeSpark("Cannot use --grads " + scaled + ": the gradients are of loss 'causal-lm-mean-cross-entropy' with scale 1.0,"
        + " not causal-lm-mean-cross-entropy with scale 100.0; compute them again with --save-grads",
        "--model", model, "--method", "prunerzero", "--grads", scaled.toString());
    Path partial = gradientSet("partial", fingerprint, 100, tensors.subList(1, tensors.size()));
    assertRefusedBeforeSpark("Cannot use --grads " + partial + ": it holds no gradients of " + tensors.get(0),
        "--model", model, "--method", "prunerzero", "--grads", partial.toString());
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
}
