package dev.sparkprune.jobs.prune;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.tensorio.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
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
}
