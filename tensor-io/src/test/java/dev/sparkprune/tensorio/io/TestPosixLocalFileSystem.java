package dev.sparkprune.tensorio.io;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The java.nio permissions of {@link PosixLocalFileSystem} against Hadoop's own local file system (chmod and ls processes). */
class TestPosixLocalFileSystem {
  @TempDir java.nio.file.Path dir;

  private static FileSystem open(FileSystem fs) throws IOException {
    fs.initialize(URI.create("file:///"), new Configuration());
    return fs;
  }

  @Test
  void createsFoldersAndFilesWithHadoopsPermissionsAndReadsThemAsHadoopDoes() throws IOException {
    try (FileSystem posix = open(new PosixLocalFileSystem()); FileSystem hadoop = open(new LocalFileSystem())) {
      for (FileSystem fs : List.of(posix, hadoop)) {
        Path root = new Path(dir.toUri().toString(), fs == posix ? "posix" : "hadoop");
        assertThat(fs.mkdirs(new Path(root, "a/b"))).isTrue();
        try (FSDataOutputStream out = fs.create(new Path(root, "a/b/file"), false)) {
          out.write("bytes".getBytes(StandardCharsets.UTF_8));
        }
        fs.setPermission(new Path(root, "a/b/file"), new FsPermission((short) 0640));
        fs.setPermission(new Path(root, "a"), new FsPermission((short) 0751));
        try (FSDataOutputStream out = fs.create(new Path(root, "a/other"), false)) {
          out.write(1);
        }
        fs.setPermission(new Path(root, "a/other"), new FsPermission((short) 0000));
        assertThat(fs.rename(new Path(root, "a/other"), new Path(root, "a/renamed"))).isTrue();
      }
      Path posixRoot = new Path(dir.toUri().toString(), "posix");
      Path hadoopRoot = new Path(dir.toUri().toString(), "hadoop");
      // Each file system's statuses of its own tree, and of the other's, as Hadoop reads them.
      for (String relative : List.of("a", "a/b", "a/b/file", "a/renamed")) {
        FileStatus expected = hadoop.getFileStatus(new Path(hadoopRoot, relative));
        for (FileStatus actual : List.of(posix.getFileStatus(new Path(posixRoot, relative)), hadoop.getFileStatus(new Path(posixRoot, relative)))) {
          assertThat(actual.getPermission()).as(relative).isEqualTo(expected.getPermission());
          assertThat(actual.getOwner()).as(relative).isEqualTo(expected.getOwner());
          assertThat(actual.getGroup()).as(relative).isEqualTo(expected.getGroup());
          assertThat(actual.getLen()).as(relative).isEqualTo(expected.getLen());
          assertThat(actual.isDirectory()).as(relative).isEqualTo(expected.isDirectory());
        }
        assertThat(posix.getFileStatus(new Path(posixRoot, relative)).getPermission())
            .isEqualTo(hadoop.getFileStatus(new Path(posixRoot, relative)).getPermission());
      }
      assertThat(hadoop.getFileStatus(new Path(hadoopRoot, "a/b/file")).getPermission()).isEqualTo(new FsPermission((short) 0640));
      assertThat(hadoop.getFileStatus(new Path(hadoopRoot, "a/renamed")).getPermission()).isEqualTo(new FsPermission((short) 0000));
      FileStatus[] posixListing = posix.listStatus(new Path(posixRoot, "a"));
      FileStatus[] hadoopListing = hadoop.listStatus(new Path(hadoopRoot, "a"));
      Arrays.sort(posixListing, Comparator.comparing(status -> status.getPath().getName()));
      Arrays.sort(hadoopListing, Comparator.comparing(status -> status.getPath().getName()));
      assertThat(posixListing).hasSameSizeAs(hadoopListing);
      for (int i = 0; i < posixListing.length; i++) {
        assertThat(posixListing[i].getPath().getName()).isEqualTo(hadoopListing[i].getPath().getName());
        assertThat(posixListing[i].getPermission()).isEqualTo(hadoopListing[i].getPermission());
        assertThat(posixListing[i].getLen()).isEqualTo(hadoopListing[i].getLen());
      }
      // Checksummed like file:// by default: the data reads back and a .crc sits beside it.
      assertThat(new String(posix.open(new Path(posixRoot, "a/b/file")).readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("bytes");
      assertThat(dir.resolve("posix/a/b/.file.crc")).exists();
    }
  }

  @Test
  void stickyBitGoesThroughHadoop() throws IOException {
    try (FileSystem posix = open(new PosixLocalFileSystem()); FileSystem hadoop = open(new LocalFileSystem())) {
      Path folder = new Path(dir.toUri().toString(), "sticky");
      posix.mkdirs(folder);
      posix.setPermission(folder, new FsPermission((short) 01777));
      assertThat(hadoop.getFileStatus(folder).getPermission()).isEqualTo(new FsPermission((short) 01777));
    }
  }
}
