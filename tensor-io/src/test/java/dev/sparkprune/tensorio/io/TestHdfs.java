package dev.sparkprune.tensorio.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.TensorInfo;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import dev.sparkprune.tensorio.archive.ModelArchive;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The archive layer on a real in-JVM HDFS: headers, positioned row reads, hostile files. */
class TestHdfs {
  private static MiniDFSCluster cluster;
  private static String root;
  private static HadoopFileIO io;

  @BeforeAll
  static void startHdfs(@TempDir Path base) throws IOException {
    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, base.resolve("hdfs").toString());
    cluster = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
    cluster.waitActive();
    FileSystem fs = cluster.getFileSystem();
    root = fs.getUri() + "/models";
    io = new HadoopFileIO(fs.getConf());
    fs.copyFromLocalFile(
        new org.apache.hadoop.fs.Path(SharedData.stories260K().toUri()), new org.apache.hadoop.fs.Path(root + "/stories260K"));
  }

  @AfterAll
  static void stopHdfs() {
    if (cluster != null) {
      cluster.shutdown();
    }
  }

  @Test
  void archiveOnHdfsHasTheSameLayoutAndData() throws IOException {
    ModelArchive remote = ModelArchive.open(io, root + "/stories260K");
    ModelArchive local = ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString());
    assertThat(remote.location()).startsWith("hdfs://");
    ModelLayout layout = Architectures.layout(remote);
    assertThat(layout.linears()).hasSize(35);
    assertThat(layout.totalParameters()).isEqualTo(260_032);
    ArchiveTensor up = remote.tensor("model.layers.3.mlp.up_proj.weight");
    try (SafetensorsReader hdfs = remote.openShard(up.shard());
        SafetensorsReader disk = local.openShard(up.shard())) {
      TensorInfo tensor = hdfs.tensor(up.name());
      assertThat(hdfs.readRows(tensor, 100, 50)).isEqualTo(disk.readRows(disk.tensor(up.name()), 100, 50));
      assertThat(hdfs.readFloats(up.name())).isEqualTo(disk.readFloats(up.name()));
    }
  }

  @Test
  void hostileHeaderOnHdfsIsRefusedBeforeAnyAllocation() throws IOException {
    String location = root + "/hostile/model.safetensors";
    try (OutputStream out = io.newOutputFile(location).create()) {
      out.write(new byte[] {0, 0, 0, 0, 0, 0, 0, 0x7F, '{', '}'});
    }
    assertThatThrownBy(() -> SafetensorsReader.open(io.newInputFile(location)).close())
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining(location)
        .hasMessageContaining("over the 16777216-byte limit");
  }
}
