package dev.sparkprune.jobs.cluster;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

/**
 * A real HDFS (one name node, one data node on loopback) in a process of its own, for the
 * real-cluster tests: {@code MiniHdfsMain DIR} writes the file system's URI to {@code DIR/uri}
 * once it is up and runs until the process is stopped.
 */
public final class MiniHdfsMain {
  private MiniHdfsMain() {}

  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, dir.resolve("data").toString());
    conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
    conf.set("dfs.namenode.http-address", "127.0.0.1:0");
    conf.set("dfs.datanode.address", "127.0.0.1:0");
    conf.set("dfs.datanode.http.address", "127.0.0.1:0");
    conf.set("dfs.datanode.ipc.address", "127.0.0.1:0");
    MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
    cluster.waitActive();
    Runtime.getRuntime().addShutdownHook(new Thread(cluster::shutdown));
    // Written whole, then renamed: the test polls for the file and reads it at once.
    Path partial = dir.resolve("uri.partial");
    Files.writeString(partial, cluster.getFileSystem().getUri().toString(), StandardCharsets.UTF_8);
    Files.move(partial, dir.resolve("uri"), StandardCopyOption.ATOMIC_MOVE);
    Thread.currentThread().join();
  }
}
