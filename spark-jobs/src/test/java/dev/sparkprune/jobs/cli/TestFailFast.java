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
    assertCommandRefusedBeforeSpark(expected, all.toArray(String[]::new));
  }

  /** Runs a whole command line and checks one line naming {@code expected}, exit 2, no Spark, and no out folder. */
  private void assertCommandRefusedBeforeSpark(String expected, String... all) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(all, new PrintStream(out, true, StandardCharsets.UTF_8),
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
    // Locations are qualified on the driver (file: URIs), and messages name them so.
    assertRefusedBeforeSpark("Invalid safetensors header in file:" + archive.resolve("model.safetensors") + ": not valid JSON",
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
    assertRefusedBeforeSpark("Cannot read text file:/dev/zero: file:/dev/zero is not a regular file", "--model", model, "--method", "wanda",
        "--calib", "/dev/zero", "--seqlen", "64", "--nsamples", "2");

    // A sparse file: 1 GiB and a byte long, beyond what 256 Mi characters can take even at 4 bytes each; nothing is read.
    Path huge = dir.resolve("huge.txt");
    try (java.io.RandomAccessFile file = new java.io.RandomAccessFile(huge.toFile(), "rw")) {
      file.setLength(4 * TextSource.MAX_CHARS + 1);
    }
    assertRefusedBeforeSpark("Cannot read text file:" + huge + ": " + (4 * TextSource.MAX_CHARS + 1) + " bytes, over the limit of "
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
    assertRefusedBeforeSpark("Cannot use --stats file:" + stats + " with --method gblm alone: statistics saved by --save-stats come from a"
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
    assertRefusedBeforeSpark("Invalid --grads file:" + empty + ": no grads.json (was it written with --save-grads?)",
        "--model", model, "--method", "gblm", "--calib", text, "--grads", empty.toString());
    Path other = gradientSet("other-model", "0".repeat(64), 100, tensors);
    assertRefusedBeforeSpark("Cannot use --grads file:" + other + ": the gradients were computed for a different model (fingerprint "
        + "0".repeat(64) + ", this model " + fingerprint + ")", "--model", model, "--method", "prunerzero", "--grads", other.toString());
    Path scaled = gradientSet("other-scale", fingerprint, 1, tensors);
    assertRefusedBeforeSpark("Cannot use --grads file:" + scaled + ": the gradients are of loss 'causal-lm-mean-cross-entropy' with scale 1.0,"
        + " not causal-lm-mean-cross-entropy with scale 100.0; compute them again with --save-grads",
        "--model", model, "--method", "prunerzero", "--grads", scaled.toString());
    Path partial = gradientSet("partial", fingerprint, 100, tensors.subList(1, tensors.size()));
    assertRefusedBeforeSpark("Cannot use --grads file:" + partial + ": it holds no gradients of " + tensors.get(0),
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
        "Invalid tokenizer file:" + archive + "/tokenizer.json: it has token ids up to 512, but the model has 512 embedding rows",
        "--model", archive.toString(), "--method", "wanda", "--calib", text, "--seqlen", "64", "--nsamples", "2");
  }

  private static final String TEXT = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();

  /**
   * 100,000 samples of 512 tokens are 51M tokens, under the 2^26 token limit, but 13 GB of cached
   * hidden states: refused before anything is sampled, with the numbers, instead of an
   * OutOfMemoryError after Spark started.
   */
  @Test
  void aCalibrationTheExecutorsCannotHoldIsRefusedBeforeSparkStarts() {
    long heap = Runtime.getRuntime().maxMemory();
    long perTask = (heap - (300L << 20)) / 2;
    assertRefusedBeforeSpark("Cannot calibrate 100000 samples x 512 tokens (--nsamples, --seqlen): a task holds about ",
        "--model", SharedData.stories260K().toString(), "--method", "wanda", "--calib", TEXT, "--nsamples", "100000", "--seqlen", "512",
        "--master", "local[2]");
    // The same figures as a direct computation: 8 chunks of 6,250 samples per partition, 512 tokens, 64 floats of 4 bytes, in and out.
    long partition = 8L * 6250 * 512 * 64 * 4;
    assertThat(partition).isEqualTo(6_553_600_000L);
    assertThat(perTask).isLessThan(2 * partition);
  }

  /** Paths are Unicode: an archive under 模型 and outputs résultat or naïve are compared, not refused with "Bad escape". */
  @Test
  void nonAsciiPathsAreCheckedLikeAnyOther() throws IOException {
    Path model = copyOfStories260K("模型");
    assertCommandRefusedBeforeSpark("Invalid --out file:" + model.resolve("naïve") + ": it lies inside --model file:" + model,
        "prune", "--model", model.toString(), "--method", "magnitude", "--out", model.resolve("naïve").toString());
    assertCommandRefusedBeforeSpark("Invalid --out file:" + model.resolve("résultat") + ": it lies inside --model file:" + model,
        "shrink", "--model", model.toString(), "--out", model.resolve("résultat").toString(), "--calib", TEXT, "--drop-layers", "1");
  }

  /** A malformed manifest, or a --master Spark cannot run on, is one line before Spark: no 93-230 lines of traces. */
  @Test
  void batchManifestsAndMastersAreCheckedBeforeSparkStarts() throws IOException {
    Path syntax = Files.writeString(dir.resolve("syntax.jsonl"), "{\"model\": \"m\", \"method\": \"magnitude\"}\n{\"model\": \"x\", \"method\"\n");
    assertCommandRefusedBeforeSpark("Invalid --manifest file:" + syntax + " line 2: not valid JSON",
        "batch", "--manifest", syntax.toString(), "--out-root", dir.resolve("out").toString());
    Path binary = Files.write(dir.resolve("binary.jsonl"), new byte[] {(byte) 0x89, 'P', 'N', 'G', 0, 0, (byte) 0xff, (byte) 0xfe});
    assertCommandRefusedBeforeSpark("Invalid --manifest file:" + binary + ": not UTF-8 text (a binary file?)",
        "batch", "--manifest", binary.toString(), "--out-root", dir.resolve("out").toString());
    Path folder = Files.createDirectories(dir.resolve("manifests"));
    assertCommandRefusedBeforeSpark("Invalid --manifest file:" + folder + ": it is a folder; give one JSONL, CSV or Parquet file",
        "batch", "--manifest", folder.toString(), "--out-root", dir.resolve("out").toString());
    Path array = Files.writeString(dir.resolve("array.jsonl"), "[\"model\", \"method\"]\n");
    assertCommandRefusedBeforeSpark("Invalid --manifest file:" + array + " line 1: expected one JSON object per line, found ARRAY",
        "batch", "--manifest", array.toString(), "--out-root", dir.resolve("out").toString());
    Path parquet = Files.writeString(dir.resolve("rows.parquet"), "PAR1 not a footer PAR1");
    assertCommandRefusedBeforeSpark("Invalid --manifest file:" + parquet + ": not a readable Parquet file",
        "batch", "--manifest", parquet.toString(), "--out-root", dir.resolve("out").toString());

    String model = SharedData.stories260K().toString();
    assertRefusedBeforeSpark("Invalid --master local[0]: counts must be at least 1", "--model", model, "--method", "magnitude", "--master", "local[0]");
    assertCommandRefusedBeforeSpark("Invalid --master local[0]: counts must be at least 1",
        "batch", "--manifest", syntax.toString(), "--out-root", dir.resolve("out").toString(), "--master", "local[0]");
    assertRefusedBeforeSpark("Cannot reach --master spark://nohost.invalid:1: unknown host nohost.invalid",
        "--model", model, "--method", "magnitude", "--master", "spark://nohost.invalid:1");
    int closed;
    try (java.net.ServerSocket socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      closed = socket.getLocalPort();
    }
    assertRefusedBeforeSpark("Cannot reach --master spark://127.0.0.1:" + closed + ": nothing accepts connections at 127.0.0.1:" + closed,
        "--model", model, "--method", "magnitude", "--master", "spark://127.0.0.1:" + closed);
  }

  /** Token ids that are not integers, out of the vocabulary, negative or ragged; an empty first row. All before Spark. */
  @Test
  void preTokenizedRowsAreCheckedBeforeSparkStarts() throws IOException {
    String model = SharedData.stories260K().toString();
    Path fractional = Files.writeString(dir.resolve("fractional.jsonl"), "{\"input_ids\": [1, 2.7, 3, 4]}\n{\"input_ids\": [1, 2, 3, 4]}\n");
    assertRefusedBeforeSpark("Invalid JSONL file:" + fractional + " line 1: input_ids[1] = 2.7 is not a token id (an integer)",
        "--model", model, "--method", "wanda", "--calib", fractional.toString(), "--nsamples", "2");
    Path outside = Files.writeString(dir.resolve("outside.jsonl"), "{\"input_ids\": [1, 2, 3, 4]}\n{\"input_ids\": [1, 512, 3, 4]}\n");
    assertRefusedBeforeSpark("Invalid calibration row 1 of file:" + outside + ": token id 512 at 1 is outside the vocabulary of 512",
        "--model", model, "--method", "wanda", "--calib", outside.toString(), "--nsamples", "2");
    Path negative = Files.writeString(dir.resolve("negative.jsonl"), "{\"input_ids\": [1, -3, 3, 4]}\n{\"input_ids\": [1, 2, 3, 4]}\n");
    assertRefusedBeforeSpark("Invalid calibration row 0 of file:" + negative + ": token id -3 at 1 is outside the vocabulary of 512",
        "--model", model, "--method", "wanda", "--calib", negative.toString(), "--nsamples", "2");
    Path ragged = Files.writeString(dir.resolve("ragged.jsonl"), "{\"input_ids\": [1, 2, 3, 4]}\n{\"input_ids\": [1, 2, 3]}\n");
    assertRefusedBeforeSpark("Invalid calibration row 1 of file:" + ragged + ": 3 input_ids, expected --seqlen 4",
        "--model", model, "--method", "wanda", "--calib", ragged.toString(), "--nsamples", "2");
    Path empty = Files.writeString(dir.resolve("empty.jsonl"), "{\"input_ids\": []}\n{\"input_ids\": []}\n");
    assertRefusedBeforeSpark("Invalid calibration rows file:" + empty + ": the first input_ids row holds 0 ids; a sample needs at least 2 tokens",
        "--model", model, "--method", "wanda", "--calib", empty.toString(), "--nsamples", "2");
  }

  /** Saved statistics that are missing, of another model, or without X^T X for the ADMM update: before Spark, naming the right user. */
  @Test
  void savedStatisticsAreCheckedBeforeSparkStarts() throws IOException {
    String model = SharedData.stories260K().toString();
    Path missing = dir.resolve("no-stats");
    assertRefusedBeforeSpark("Cannot read --stats file:" + missing + ": folder not found",
        "--model", model, "--method", "wanda", "--stats", missing.toString());
    Path other = Files.createDirectories(dir.resolve("other-stats"));
    Files.writeString(other.resolve("stats.json"), "{\"format\": \"sparkprune-statistics-set\", \"model_fingerprint\": \"sha256:other\", "
        + "\"hessian\": false, \"keys\": []}");
    assertRefusedBeforeSpark("Cannot use --stats file:" + other + ": they were computed for a different model (fingerprint sha256:other",
        "--model", model, "--method", "wanda", "--stats", other.toString());
    String fingerprint = dev.sparkprune.jobs.prune.plan.Fingerprints.model(
        dev.sparkprune.tensorio.archive.ModelArchive.open(new dev.sparkprune.tensorio.io.LocalFileIO(), model));
    Files.writeString(other.resolve("stats.json"), "{\"format\": \"sparkprune-statistics-set\", \"model_fingerprint\": \"" + fingerprint
        + "\", \"hessian\": false, \"keys\": []}");
    assertRefusedBeforeSpark("Cannot use --stats file:" + other + " for the ADMM weight update (--update admm): they hold no X^T X",
        "--model", model, "--method", "wanda", "--stats", other.toString(), "--update", "admm");
  }

  /** shrink --then-prune's N:M pattern must divide the shrunk widths: stories260K's 172 MLP channels are not a multiple of 8. */
  @Test
  void aPatternThatCannotDivideTheShrunkWidthsIsRefusedBeforeSparkStarts() {
    assertCommandRefusedBeforeSpark("Cannot use --then-prune with --pattern 2:8: M = 8 does not divide down_proj after --mlp-keep (kept MLP"
            + " channels), 172 wide",
        "shrink", "--model", SharedData.stories260K().toString(), "--out", dir.resolve("out").toString(), "--calib", TEXT,
        "--seqlen", "64", "--nsamples", "4", "--drop-layers", "1", "--then-prune", "wanda", "--pattern", "2:8");
  }

  /** A dangling symbolic link as --out failed at publish, after the whole job. */
  @Test
  void aDanglingSymbolicLinkAsOutIsRefusedBeforeSparkStarts() throws IOException {
    Path link = Files.createSymbolicLink(dir.resolve("link-out"), dir.resolve("gone"));
    assertCommandRefusedBeforeSpark("Invalid --out file:" + link + ": it is a symbolic link to " + dir.resolve("gone") + ", which does not exist",
        "prune", "--model", SharedData.stories260K().toString(), "--method", "magnitude", "--out", link.toString());
  }

  /** Hosts that do not resolve and file systems missing from the class path: one line, exit 2, not a raw exception. */
  @Test
  void unreachableFileSystemsAreOneLine() {
    assertRefusedBeforeSpark("Cannot reach host nohost.invalid: unknown host; check the host name in the URI",
        "--model", "hdfs://nohost.invalid:8020/models/llama", "--method", "magnitude");
    assertRefusedBeforeSpark("Cannot open s3a:// paths: the s3a file system (hadoop-aws) is not on the class path; run bin/sparkprune with "
            + "SPARKPRUNE_CLASSPATH=", "--model", "s3a://bucket/models/llama", "--method", "magnitude");
  }

  /**
   * An executor too small for anything: the calibration memory check (before sampling) speaks
   * first; the expert plan's own "one routed expert needs" refusal is tested at its byte boundary
   * in TestExpertPlan, and a budget over a task's share of the heap below.
   */
  @Test
  void anExpertTaskThatCannotFitTheHeapIsRefusedBeforeSparkStarts() {
    String model = dev.sparkprune.tensorio.ModelFixtures.path("qwen3_moe").toString();
    String text = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    assertRefusedBeforeSpark("Cannot calibrate 2 samples x 64 tokens (--nsamples, --seqlen): a task holds about ",
        "--model", model, "--method", "wanda", "--calib", text, "--seqlen", "64", "--nsamples", "2", "--master", "local-cluster[1,64,1]");
    // A budget over a task's share of this JVM's heap (local[2]: half of it).
    long task = Runtime.getRuntime().maxMemory() / 2;
    assertRefusedBeforeSpark("Invalid --expert-task-mb 100000: a task has ",
        "--model", model, "--method", "wanda", "--calib", text, "--seqlen", "64", "--nsamples", "2", "--master", "local[2]",
        "--expert-task-mb", "100000");
    assertRefusedBeforeSpark("; set it to at most " + (task >> 20),
        "--model", model, "--method", "wanda", "--calib", text, "--seqlen", "64", "--nsamples", "2", "--master", "local[2]",
        "--expert-task-mb", "100000");
    // shrink without the repair (whose streams hold whole blocks) and eval on Spark plan their expert tasks too.
    assertCommandRefusedBeforeSpark("Invalid --expert-task-mb 100000: a task has ", "shrink", "--model", model, "--out",
        dir.resolve("out").toString(), "--calib", text, "--seqlen", "64", "--nsamples", "2", "--experts-keep", "0.5", "--repair", "none",
        "--master", "local[2]", "--expert-task-mb", "100000");
    assertCommandRefusedBeforeSpark("Invalid --expert-task-mb 100000: a task has ", "eval", "--model", model, "--text", text,
        "--seqlen", "64", "--max-windows", "4", "--expert-task-mb", "100000");
  }
}
