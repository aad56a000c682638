package dev.sparkprune.jobs.cli;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;

/**
 * The local file system under the scheme {@code fulldisk:}, with a disk that fills up: once
 * {@link #CAPACITY} bytes are written in this JVM, every write fails as a full disk does.
 */
public final class FullDiskFileSystem extends RawLocalFileSystem {
  static final long CAPACITY = 64 << 10;
  private static final AtomicLong WRITTEN = new AtomicLong();

  @Override
  public URI getUri() {
    return URI.create("fulldisk:///");
  }

  @Override
  public String getScheme() {
    return "fulldisk";
  }

  @Override
  public FSDataOutputStream create(Path file, boolean overwrite, int bufferSize, short replication, long blockSize, Progressable progress)
      throws IOException {
    return new FSDataOutputStream(new Filling(super.create(file, overwrite, bufferSize, replication, blockSize, progress)), statistics);
  }

  @Override
  public FSDataOutputStream create(
      Path file, FsPermission permission, boolean overwrite, int bufferSize, short replication, long blockSize, Progressable progress)
      throws IOException {
    FSDataOutputStream local = super.create(file, permission, overwrite, bufferSize, replication, blockSize, progress);
    return new FSDataOutputStream(new Filling(local), statistics);
  }

  /** Counts the bytes written and fails past the capacity, as write(2) does with ENOSPC. */
  private static final class Filling extends FilterOutputStream {
    Filling(OutputStream out) {
      super(out);
    }

    @Override
    public void write(int b) throws IOException {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] bytes, int offset, int length) throws IOException {
      if (WRITTEN.addAndGet(length) > CAPACITY) {
        throw new IOException("No space left on device");
      }
      out.write(bytes, offset, length);
    }
  }
}
