package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.prune.output.PruneReport;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The prune job reading its model and text from, and writing its outputs to, a real HDFS. */
class PruneOnHdfsIT extends SparkTestBase {
  private static MiniDFSCluster cluster;
  private static String root;

  @TempDir static Path dir;

  @BeforeAll
  static void startHdfs() throws IOException {
    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, dir.resolve("hdfs").toString());
    cluster = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
    cluster.waitActive();
    FileSystem fs = cluster.getFileSystem();
    root = fs.getUri().toString();
    fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(SharedData.stories260K().toUri()), new org.apache.hadoop.fs.Path(root + "/models/stories260K"));
    fs.copyFromLocalFile(
        new org.apache.hadoop.fs.Path(SharedData.path("data/tinystories/tinystories_val_sample.txt").toUri()),
        new org.apache.hadoop.fs.Path(root + "/text/tinystories.txt"));
  }

  @AfterAll
  static void stopHdfs() {
    if (cluster != null) {
      cluster.shutdown();
    }
  }

  private static PruneOptions.Builder options(String model, String text, String out) {
    return PruneOptions.builder().model(model).out(out).method(PruningMethod.SPARSEGPT).target(SparsityTarget.unstructured(0.5))
        .calibration(text).nsamples(4).seqlen(64).seed(3);
  }

  private static PruneReport run(PruneOptions options) throws IOException {
    return new PruneJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
  }

  @Test
  void hdfsInputAndOutputGiveTheSameBytesAsLocalFiles() throws IOException {
    String out = root + "/pruned/stories260K";
    run(options(root + "/models/stories260K", root + "/text/tinystories.txt", out).build());
    Path local = dir.resolve("local-out");
    run(options(SharedData.stories260K().toString(), SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), local.toString()).build());

    FileSystem fs = cluster.getFileSystem();
    byte[] remote;
    try (InputStream in = fs.open(new org.apache.hadoop.fs.Path(out + "/model/model.safetensors"))) {
      remote = in.readAllBytes();
    }
    assertThat(remote).isEqualTo(Files.readAllBytes(local.resolve("model/model.safetensors")));
    assertThat(fs.exists(new org.apache.hadoop.fs.Path(out + "/report.json"))).isTrue();
    assertThat(spark.read().parquet(out + "/masks").count()).isEqualTo(spark.read().parquet(local.resolve("masks").toString()).count());
    // The output is a model archive tensor-io reads on HDFS, and nothing was left staged.
    ModelArchive pruned = ModelArchive.open(new HadoopFileIO(fs.getConf()), out + "/model");
    assertThat(Architectures.layout(pruned).linears()).hasSize(35);
    try (SafetensorsReader reader = pruned.openShard("model.safetensors")) {
      assertThat(reader.tensors()).hasSize(47);
    }
    assertThat(fs.listStatus(new org.apache.hadoop.fs.Path(root + "/pruned"))).hasSize(1);
  }
}
