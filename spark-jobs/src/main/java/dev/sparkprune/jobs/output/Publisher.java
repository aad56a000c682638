package dev.sparkprune.jobs.output;

import dev.sparkprune.jobs.spark.FaultProbe;
import dev.sparkprune.jobs.spark.StagedRun;
import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.util.Optional;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Run-scoped staging and the publish step. Everything is written under a sibling folder
 * {@code <out>.staging-<run id>}; publishing writes the output's {@link OutputMarker}, renames an
 * earlier output aside ({@code <out>.replaced-<run id>}), renames the staging folder to {@code
 * <out>} and deletes the replaced one. Directory renames are atomic on HDFS and local file
 * systems, so readers see the old output or the new one, never a mix. Concurrent runs on one
 * output serialize their publish through {@code <out>.publish-lock}, created exclusively and held
 * only for the renames: the last to publish wins and neither output is ever nested in or mixed
 * with the other. The earlier output is checked again under the lock ({@link OutputGuard}).
 *
 * <p>A rename that throws leaves the outcome unknown (on s3a a rename is a copy, and it may stop
 * half way): the run then deletes nothing, neither its staging folder nor the set-aside output,
 * and fails with {@link CommitStateUnknownException}. A crash between the renames is the same
 * case. The next run on that output recovers under the lock before anything else: it restores
 * the set-aside output when {@code <out>} is missing, completes the publish when {@code <out>}
 * is the whole output of the interrupted run (its marker's files, sizes included), and refuses,
 * deleting nothing, when {@code <out>} is anything else.
 */
public final class Publisher implements StagedRun.Output {
  private static final String STAGING = ".staging-";
  private static final String REPLACED = ".replaced-";
  private static final String LOCK = ".publish-lock";
  private static final int LOCK_ATTEMPTS = 200;
  private static final long LOCK_WAIT_MILLIS = 50;

  /**
   * Hadoop setting (Spark: {@code spark.hadoop.sparkprune.publish.stale-lock-seconds}): a publish
   * lock older than this was left by a run killed while publishing, which takes two renames, so
   * it is removed. Default ten minutes.
   */
  public static final String STALE_LOCK_SECONDS = "sparkprune.publish.stale-lock-seconds";

  /** The setting's spelling before release 0.2, still read after the current one. */
  @Deprecated
  public static final String DEPRECATED_STALE_LOCK_SECONDS = "sparkprune.publish.staleLockSeconds";

  private final FileSystem fs;
  private final Path out;
  private final Path staging;
  private final String runId;
  private final boolean overwrite;
  private int lockAttempts = LOCK_ATTEMPTS;
  /** The run's fault probe: its "publish" point lies between the two renames. */
  private final FaultProbe probe;
  /** Set when a rename threw: the staging folder may hold the only whole copy of the output. */
  private boolean outcomeUnknown;

  private Publisher(FileSystem fs, Path out, Path staging, String runId, boolean overwrite, FaultProbe probe) {
    this.fs = fs;
    this.out = out;
    this.staging = staging;
    this.runId = runId;
    this.overwrite = overwrite;
    this.probe = probe;
  }

  public static Publisher prepare(Configuration conf, String outLocation, String runId) throws IOException {
    return prepare(conf, outLocation, runId, false);
  }

  /**
   * Recovers from an interrupted publish, then creates this run's staging folder. {@code
   * overwrite}: the earlier output may be replaced even when it is not a sparkprune output.
   */
  public static Publisher prepare(Configuration conf, String outLocation, String runId, boolean overwrite) throws IOException {
    return prepare(conf, outLocation, runId, overwrite, FaultProbe.NONE);
  }

  /** A run's output as {@link StagedRun} prepares it: this request's folder, with the run's probe. */
  public static StagedRun.OutputPreparer preparer(Configuration conf, OutputRequest request) {
    return (runId, probe) -> prepare(conf, request.out(), runId, request.overwrite(), probe);
  }

  public static Publisher prepare(Configuration conf, String outLocation, String runId, boolean overwrite, FaultProbe probe)
      throws IOException {
    Path out = new Path(outLocation);
    FileSystem fs = out.getFileSystem(conf);
    OutputGuard.checkParent(fs, out, "--out " + outLocation);
    Path parent = out.getParent();
    Publisher publisher = new Publisher(fs, out, new Path(parent, out.getName() + STAGING + runId), runId, overwrite, probe);
    if (fs.exists(parent)) {
      ValidationException.check(
          !fs.exists(out) || fs.getFileStatus(out).isDirectory(), "Invalid --out %s: it exists and is not a folder", outLocation);
      removeIfStale(fs, publisher.lock(), staleLockSeconds(conf));
      publisher.recover();
    }
    try {
      if (!fs.mkdirs(publisher.staging)) {
        throw new IOException("Cannot create staging folder " + publisher.staging);
      }
    } catch (org.apache.hadoop.security.AccessControlException | java.nio.file.AccessDeniedException e) {
      throw new ValidationException("Cannot write --out " + outLocation + ": permission denied creating " + publisher.staging, e);
    }
    return publisher;
  }

  /**
   * Fails fast, before a run does its work, when another run holds the publish lock beyond the
   * few seconds a publish takes; a stale lock (see {@link #STALE_LOCK_SECONDS}) does not count.
   */
  public static void checkNotLocked(Configuration conf, Path out) throws IOException {
    FileSystem fs = out.getFileSystem(conf);
    if (out.getParent() == null) {
      return;
    }
    Path lock = new Path(out.getParent(), out.getName() + LOCK);
    long staleMillis = staleLockSeconds(conf) * 1000;
    for (int attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
      FileStatus status;
      try {
        status = fs.getFileStatus(lock);
      } catch (java.io.FileNotFoundException e) {
        return;
      }
      if (System.currentTimeMillis() - status.getModificationTime() >= staleMillis) {
        return;
      }
      sleep(out);
    }
    throw new ValidationException("Cannot write --out " + out + ": another run holds " + lock
        + "; wait for it to finish, or delete that file if no run is publishing");
  }

  @SuppressWarnings("deprecation")
  private static long staleLockSeconds(Configuration conf) {
    return conf.getLong(STALE_LOCK_SECONDS, conf.getLong(DEPRECATED_STALE_LOCK_SECONDS, 600));
  }

  private Path lock() {
    return new Path(out.getParent(), out.getName() + LOCK);
  }

  /** Resolves a publish a crash or a throwing rename interrupted, holding the lock; deletes only what is proven redundant. */
  private void recover() throws IOException {
    Path replaced = null;
    for (FileStatus sibling : fs.listStatus(out.getParent())) {
      if (sibling.getPath().getName().startsWith(out.getName() + REPLACED)) {
        replaced = sibling.getPath();
        break;
      }
    }
    if (replaced == null) {
      return;
    }
    acquire(lock());
    try {
      if (!fs.exists(replaced)) {
        return;
      }
      String interrupted = replaced.getName().substring(out.getName().length() + REPLACED.length());
      if (!fs.exists(out)) {
        ValidationException.check(fs.rename(replaced, out), "Cannot restore %s from %s: the rename failed; move it back by hand", out, replaced);
        return;
      }
      Optional<OutputMarker> marker = OutputMarker.read(fs, out);
      boolean whole = marker.isPresent() && marker.get().runId().equals(interrupted) && marker.get().isWhole(OutputMarker.list(fs, out));
      ValidationException.check(whole,
          "Cannot publish %s: an interrupted publish left the earlier output in %s and something else in %s; "
              + "check them, keep the one you want as %s and delete the other",
          out, replaced, out, out);
      // The interrupted run's output is in place, whole: finish its publish.
      fs.delete(replaced, true);
      fs.delete(new Path(out.getParent(), out.getName() + STAGING + interrupted), true);
    } finally {
      fs.delete(lock(), false);
    }
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
  public Publisher withLockAttempts(int attempts) {
    this.lockAttempts = attempts;
    return this;
  }

  @Override
  public String staging() {
    return staging.toString();
  }

  public String out() {
    return out.toString();
  }

  @Override
  public String location() {
    return out();
  }

  /** Moves the staged output into place; an earlier output is replaced only after this run succeeded. */
  @Override
  public void publish() throws IOException {
    OutputMarker.write(fs, staging, runId);
    Path lock = lock();
    acquire(lock);
    try {
      // Checked again under the lock: the folder may have changed while this run worked.
      OutputGuard.checkReplaceable(fs, out, "--out " + out, overwrite);
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
        sleep(out);
      }
    }
    throw new IOException("Cannot publish " + out + ": another run holds " + lock + "; if no run is publishing, delete that file");
  }

  private static void sleep(Path out) throws IOException {
    try {
      Thread.sleep(LOCK_WAIT_MILLIS);
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
      throw new IOException("Interrupted waiting to publish " + out, interrupted);
    }
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
    if (hadOutput && !rename(out, replaced)) {
      throw new IOException("Cannot publish: renaming the earlier output " + out + " aside failed; it is untouched");
    }
    probe.at("publish");
    if (!rename(staging, out)) {
      if (hadOutput && !rename(replaced, out)) {
        throw unknown(replaced, "moving the earlier output back failed");
      }
      throw new IOException("Cannot publish: renaming " + staging + " to " + out + " failed; the earlier output is untouched");
    }
    if (hadOutput) {
      fs.delete(replaced, true);
    }
  }

  /** A rename's result; one that throws may have done part of its work, so nothing is cleaned up after it. */
  private boolean rename(Path from, Path to) throws IOException {
    try {
      return fs.rename(from, to);
    } catch (IOException | RuntimeException e) {
      throw unknown(new Path(out.getParent(), out.getName() + REPLACED + runId), "renaming " + from + " to " + to + " threw " + e);
    }
  }

  private CommitStateUnknownException unknown(Path replaced, String what) {
    outcomeUnknown = true;
    return new CommitStateUnknownException("Cannot publish " + out + ": the outcome is unknown (" + what.replace('\n', ' ')
        + "); nothing was deleted: the earlier output is in " + out + " or " + replaced + ", this run's in " + staging
        + "; the next run on " + out + " restores or completes it");
  }

  /** Deletes this run's staging folder after a failure; an earlier output stays as it was. */
  @Override
  public void abort() {
    if (outcomeUnknown) {
      return;
    }
    try {
      fs.delete(staging, true);
    } catch (IOException e) {
      // Nothing else to do: the staging folder is private to this run and never read.
    }
  }

  /** A publish that may or may not have happened: retrying or cleaning up blindly could lose an output. */
  static final class CommitStateUnknownException extends IOException {
    private static final long serialVersionUID = 1L;

    CommitStateUnknownException(String message) {
      super(message);
    }
  }
}
