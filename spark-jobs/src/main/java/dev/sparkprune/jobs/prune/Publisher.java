package dev.sparkprune.jobs.prune;

import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Run-scoped staging and the publish step. Everything is written under a sibling folder
 * {@code <out>.staging-<run id>}; publishing renames an earlier output aside
 * ({@code <out>.replaced-<run id>}), renames the staging folder to {@code <out>} and deletes the
 * replaced one. Directory renames are atomic on HDFS and local file systems, so readers see
 * the old output or the new one, never a mix. A crash between the two renames leaves the old
 * output under its replaced name; the next run restores it before anything else. Concurrent
 * runs on one output serialize their publish through {@code <out>.publish-lock}, created
 * exclusively and held only for the renames: the last to publish wins and neither output is
 * ever nested in or mixed with the other. Object stores (s3a) have no atomic rename: there the
 * publish is a copy and is not atomic.
 */
final class Publisher {
  private static final String STAGING = ".staging-";
  private static final String REPLACED = ".replaced-";
  private static final String LOCK = ".publish-lock";
  private static final int LOCK_ATTEMPTS = 200;
  private static final long LOCK_WAIT_MILLIS = 50;

  /**
   * Hadoop setting (Spark: {@code spark.hadoop.sparkprune.publish.staleLockSeconds}): a publish
   * lock older than this was left by a run killed while publishing, which takes two renames, so
   * it is removed. Default ten minutes.
   */
  static final String STALE_LOCK_SECONDS = "sparkprune.publish.staleLockSeconds";

  private final FileSystem fs;
  private final Path out;
  private final Path staging;
  private final String runId;
  private int lockAttempts = LOCK_ATTEMPTS;
  /** Test-only: halt the JVM between the two renames, as a crash there would. */
  private boolean haltAfterSettingAside;

  private Publisher(FileSystem fs, Path out, Path staging, String runId) {
    this.fs = fs;
    this.out = out;
    this.staging = staging;
    this.runId = runId;
  }

  /** Restores an output left aside by a crashed publish, then creates this run's staging folder. */
  static Publisher prepare(Configuration conf, String outLocation, String runId) throws IOException {
    Path out = new Path(outLocation);
    FileSystem fs = out.getFileSystem(conf);
    Path parent = out.getParent();
    ValidationException.check(parent != null, "Invalid --out %s: it needs a parent folder", outLocation);
    if (fs.exists(parent)) {
      ValidationException.check(
          !fs.exists(out) || fs.getFileStatus(out).isDirectory(), "Invalid --out %s: it exists and is not a folder", outLocation);
      Path lock = new Path(parent, out.getName() + LOCK);
      removeIfStale(fs, lock, conf.getLong(STALE_LOCK_SECONDS, 600));
      // A missing output with a replaced sibling and no publish in progress: a crashed publish.
      if (!fs.exists(out) && !fs.exists(lock)) {
        for (FileStatus sibling : fs.listStatus(parent)) {
          if (sibling.getPath().getName().startsWith(out.getName() + REPLACED)) {
            fs.rename(sibling.getPath(), out);
            break;
          }
        }
      }
    }
    Path staging = new Path(parent, out.getName() + STAGING + runId);
    if (!fs.mkdirs(staging)) {
      throw new IOException("Cannot create staging folder " + staging);
    }
    return new Publisher(fs, out, staging, runId);
  }

  private static void removeIfStale(FileSystem fs, Path lock, long staleSeconds) throws IOException {
    try {
      long age = System.currentTimeMillis() - fs.getFileStatus(lock).getModificationTime();
      if (age >= staleSeconds * 1000) {
        fs.delete(lock, false);
      }
    } catch (java.io.FileNotFoundException e) {
      // No lock: nothing to do.
    }
  }

  /** Tests shorten the wait for a held lock. */
  Publisher withLockAttempts(int attempts) {
    this.lockAttempts = attempts;
    return this;
  }

  /** Test-only: the next publish halts the JVM right after renaming the earlier output aside. */
  void haltAfterSettingAside() {
    this.haltAfterSettingAside = true;
  }

  String staging() {
    return staging.toString();
  }

  String out() {
    return out.toString();
  }

  /** Moves the staged output into place; an earlier output is replaced only after this run succeeded. */
  void publish() throws IOException {
    Path lock = new Path(out.getParent(), out.getName() + LOCK);
    acquire(lock);
    try {
      swap();
    } finally {
      fs.delete(lock, false);
    }
  }

  private void acquire(Path lock) throws IOException {
    for (int attempt = 0; attempt < lockAttempts; attempt++) {
      try {
        createExclusively(lock);
        return;
      } catch (org.apache.hadoop.fs.FileAlreadyExistsException | java.nio.file.FileAlreadyExistsException e) {
        try {
          Thread.sleep(LOCK_WAIT_MILLIS);
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          throw new IOException("Interrupted waiting to publish " + out, interrupted);
        }
      }
    }
    throw new IOException("Cannot publish " + out + ": another run holds " + lock + "; if no run is publishing, delete that file");
  }

  /**
   * Creates the lock file or fails if it exists, atomically: HDFS's create without overwrite is
   * atomic at the NameNode; Hadoop's local file system checks then creates, so local paths use
   * NIO's exclusive create.
   */
  private void createExclusively(Path lock) throws IOException {
    if ("file".equals(fs.getScheme())) {
      java.nio.file.Files.createFile(java.nio.file.Paths.get(fs.makeQualified(lock).toUri()));
      return;
    }
    try (var stream = fs.create(lock, false)) {
      stream.write(runId.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }
  }

  private void swap() throws IOException {
    Path replaced = new Path(out.getParent(), out.getName() + REPLACED + runId);
    boolean hadOutput = fs.exists(out);
    if (hadOutput && !fs.rename(out, replaced)) {
      throw new IOException("Cannot publish: renaming the earlier output " + out + " aside failed; it is untouched");
    }
    if (haltAfterSettingAside) {
      Runtime.getRuntime().halt(137);
    }
    if (!fs.rename(staging, out)) {
      if (hadOutput) {
        fs.rename(replaced, out);
      }
      throw new IOException("Cannot publish: renaming " + staging + " to " + out + " failed; the earlier output is untouched");
    }
    if (hadOutput) {
      fs.delete(replaced, true);
    }
  }

  /** Deletes this run's staging folder after a failure; an earlier output stays as it was. */
  void abort() {
    try {
      fs.delete(staging, true);
    } catch (IOException e) {
      // Nothing else to do: the staging folder is private to this run and never read.
    }
  }
}
