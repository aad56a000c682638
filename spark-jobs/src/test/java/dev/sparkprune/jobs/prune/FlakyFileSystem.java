package dev.sparkprune.jobs.prune;

import java.io.IOException;
import java.net.URI;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.security.AccessControlException;

/**
 * The local file system under the scheme {@code flaky://}, with failures a test switches on: the
 * n-th rename throws (before or after doing its work, as an interrupted s3a copy leaves the
 * outcome unknown either way), or writing is denied (as to a folder of another user). Registered per configuration
 * with {@code fs.flaky.impl}; the switches are static because Hadoop may create several
 * instances.
 */
public class FlakyFileSystem extends RawLocalFileSystem {
  static final String SCHEME = "flaky";
  /** The number of the rename that throws (1-based); 0 for none. */
  public static final AtomicInteger failingRename = new AtomicInteger();
  public static final AtomicInteger renames = new AtomicInteger();
  public static volatile boolean renameBeforeThrowing;
  public static volatile boolean denyWrites;

  /** A configuration that maps flaky:// to this class, with every switch off. */
  public static Configuration configuration() {
    failingRename.set(0);
    renames.set(0);
    renameBeforeThrowing = false;
    denyWrites = false;
    Configuration conf = new Configuration();
    conf.set("fs." + SCHEME + ".impl", FlakyFileSystem.class.getName());
    conf.setBoolean("fs." + SCHEME + ".impl.disable.cache", true);
    return conf;
  }

  public static String uri(java.nio.file.Path local) {
    return SCHEME + "://" + local.toAbsolutePath();
  }

  @Override
  public URI getUri() {
    return URI.create(SCHEME + ":///");
  }

  @Override
  public String getScheme() {
    return SCHEME;
  }

  /** Plain statuses: the local ones load permissions lazily from a java.io.File of the path's URI, which must be file://. */
  @Override
  public org.apache.hadoop.fs.FileStatus[] listStatus(Path path) throws IOException {
    org.apache.hadoop.fs.FileStatus[] statuses = super.listStatus(path);
    for (int i = 0; i < statuses.length; i++) {
      statuses[i] = plain(statuses[i]);
    }
    return statuses;
  }

  @Override
  public org.apache.hadoop.fs.FileStatus getFileStatus(Path path) throws IOException {
    return plain(super.getFileStatus(path));
  }

  private static org.apache.hadoop.fs.FileStatus plain(org.apache.hadoop.fs.FileStatus status) {
    return new org.apache.hadoop.fs.FileStatus(
        status.getLen(), status.isDirectory(), 1, status.getBlockSize(), status.getModificationTime(), status.getPath());
  }

  @Override
  public boolean rename(Path from, Path to) throws IOException {
    if (renames.incrementAndGet() != failingRename.get()) {
      return super.rename(from, to);
    }
    if (renameBeforeThrowing) {
      super.rename(from, to);
    }
    throw new IOException("injected: the connection dropped during rename " + from + " -> " + to);
  }

  @Override
  public void access(Path path, org.apache.hadoop.fs.permission.FsAction mode) throws IOException {
    if (denyWrites && mode.implies(org.apache.hadoop.fs.permission.FsAction.WRITE)) {
      throw new AccessControlException("Permission denied: injected for " + path);
    }
  }

  @Override
  public boolean mkdirs(Path path) throws IOException {
    if (denyWrites) {
      throw new AccessControlException("Permission denied: injected for " + path);
    }
    return super.mkdirs(path);
  }
}
