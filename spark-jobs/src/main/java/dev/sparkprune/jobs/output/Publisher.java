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
 * is the whole output of the interrupted run (its marker's files, sizes and digests), and
 * refuses, deleting nothing, when {@code <out>} is anything else. Recovery touches a {@code
 * <out>.replaced-<run>} folder only when this tool's own publish provably made it: the marker
 * written before the first rename, in {@code <out>.staging-<run>} or (after the second) in
 * {@code <out>}, names that run and this output. Any other folder of that name, and any input of
 * the run, is never touched.
 *
 * <p>Each staging folder holds its owner ({@link RunOwner}: host, PID, start time) until it is
 * published, and the publish lock names its holder the same way: a staging folder or a lock
 * whose owner is provably dead (kill -9) is removed by the next run on that output instead of
 * lingering or blocking it until {@link #STALE_LOCK_SECONDS}.
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
   * it is removed. Default ten minutes. A lock whose holder is provably dead ({@link RunOwner}: on
   * this machine, its process gone) is removed at once; this age is the fallback for a holder
   * that cannot be proved dead (another host, a lock from an earlier version).
   */
  public static final String STALE_LOCK_SECONDS = "sparkprune.publish.stale-lock-seconds";

  /** The setting's spelling before release 0.2, still read after the current one. */
  @Deprecated
  public static final String DEPRECATED_STALE_LOCK_SECONDS = "sparkprune.publish.staleLockSeconds";

  private final FileSystem fs;
  private final Path out;
  /** The output's qualified name, as the marker records it: what proves a set-aside folder is for this output. */
  private final String qualifiedOut;
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
    this.qualifiedOut = fs.makeQualified(out).toString();
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
    return (runId, probe) -> prepare(conf, request.out(), runId, request.overwrite(), probe, request.inputs());
  }

  public static Publisher prepare(Configuration conf, String outLocation, String runId, boolean overwrite, FaultProbe probe)
      throws IOException {
    return prepare(conf, outLocation, runId, overwrite, probe, java.util.Map.of());
  }

  /**
   * As above; {@code inputs} (name to location, as {@link OutputGuard#checkOutput} takes them)
   * are never touched by recovery or by the removal of dead runs' staging folders.
   */
  public static Publisher prepare(Configuration conf, String outLocation, String runId, boolean overwrite, FaultProbe probe,
      java.util.Map<String, String> inputs) throws IOException {
    Path out = new Path(outLocation);
    // Raw: the owner and lock files, renames and listings without Hadoop's checksum side files.
    FileSystem fs = OutputMarker.raw(out.getFileSystem(conf));
    OutputGuard.checkParent(fs, out, "--out " + outLocation);
    Path parent = out.getParent();
    Publisher publisher = new Publisher(fs, out, new Path(parent, out.getName() + STAGING + runId), runId, overwrite, probe);
    if (fs.exists(parent)) {
      ValidationException.check(
          !fs.exists(out) || fs.getFileStatus(out).isDirectory(), "Invalid --out %s: it exists and is not a folder", outLocation);
      removeIfStale(fs, publisher.lock(), staleLockSeconds(conf));
      publisher.recover(conf, inputs);
      publisher.removeDeadStaging(conf, inputs);
    }
    // A folder of that name is someone else's (run ids are random): never write into it or delete it.
    ValidationException.check(!fs.exists(publisher.staging), "Cannot stage --out %s: %s already exists and is not this run's; move it away",
        outLocation, publisher.staging);
    try {
      if (!fs.mkdirs(publisher.staging)) {
        throw new IOException("Cannot create staging folder " + publisher.staging);
      }
    } catch (org.apache.hadoop.security.AccessControlException | java.nio.file.AccessDeniedException e) {
      throw new ValidationException("Cannot write --out " + outLocation + ": permission denied creating " + publisher.staging, e);
    }
    RunOwner.current(runId).write(fs, new Path(publisher.staging, RunOwner.NAME));
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
    long staleSeconds = staleLockSeconds(conf);
    for (int attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
      try {
        if (isStale(fs, lock, staleSeconds)) {
          return;
        }
      } catch (java.io.FileNotFoundException e) {
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

  /**
   * Resolves a publish a crash or a throwing rename interrupted, holding the lock; touches only a
   * set-aside folder this tool's publish provably made, never an input, and deletes only what is
   * proven redundant.
   */
  private void recover(Configuration conf, java.util.Map<String, String> inputs) throws IOException {
    Path replaced = null;
    String interrupted = null;
    for (FileStatus sibling : fs.listStatus(out.getParent())) {
      String name = sibling.getPath().getName();
      if (name.startsWith(out.getName() + REPLACED) && sibling.isDirectory()) {
        String run = name.substring(out.getName().length() + REPLACED.length());
        if (setAsideBy(run)) {
          replaced = sibling.getPath();
          interrupted = run;
          break;
        }
      }
    }
    if (replaced == null) {
      return;
    }
    Optional<String> input = OutputGuard.touchedInput(conf, fs.makeQualified(replaced), inputs);
    ValidationException.check(input.isEmpty(),
        "Cannot recover --out %s: an interrupted publish left the earlier output in %s, and this run reads %s from there; "
            + "move that folder back to %s (or elsewhere) by hand, then run again",
        out, replaced, input.orElse(""), out);
    acquire(lock());
    try {
      if (!fs.exists(replaced)) {
        return;
      }
      if (!fs.exists(out)) {
        ValidationException.check(fs.rename(replaced, out), "Cannot restore %s from %s: the rename failed; move it back by hand", out, replaced);
        return;
      }
      Optional<OutputMarker> marker = OutputMarker.read(fs, out);
      boolean whole = marker.isPresent() && marker.get().runId().equals(interrupted) && marker.get().isWhole(fs, out);
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

  /**
   * Whether {@code <out>.replaced-<run>} was set aside by this tool's publish of run {@code run}
   * to this output: the marker written before the first rename names both, in that run's staging
   * folder (the second rename did not happen) or in the output (it did).
   */
  private boolean setAsideBy(String run) throws IOException {
    for (Path folder : new Path[] {new Path(out.getParent(), out.getName() + STAGING + run), out}) {
      if (fs.exists(folder)) {
        Optional<OutputMarker> marker = OutputMarker.read(fs, folder);
        if (marker.isPresent() && marker.get().runId().equals(run) && marker.get().out().equals(qualifiedOut)) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * Deletes the {@code <out>.staging-<run>} folders of runs provably dead (killed while writing):
   * only folders holding a {@link RunOwner} of this machine whose process is gone, never an input.
   */
  private void removeDeadStaging(Configuration conf, java.util.Map<String, String> inputs) throws IOException {
    for (FileStatus sibling : fs.listStatus(out.getParent())) {
      Path folder = sibling.getPath();
      if (!sibling.isDirectory() || !folder.getName().startsWith(out.getName() + STAGING) || folder.getName().equals(staging.getName())) {
        continue;
      }
      Optional<RunOwner> owner = RunOwner.read(fs, new Path(folder, RunOwner.NAME));
      String run = folder.getName().substring(out.getName().length() + STAGING.length());
      if (owner.isPresent() && owner.get().runId().equals(run) && owner.get().isProvablyDead()
          && OutputGuard.touchedInput(conf, fs.makeQualified(folder), inputs).isEmpty()) {
        fs.delete(folder, true);
      }
    }
  }

  private static void removeIfStale(FileSystem fs, Path lock, long staleSeconds) throws IOException {
    try {
      if (isStale(fs, lock, staleSeconds)) {
        fs.delete(lock, false);
      }
    } catch (java.io.FileNotFoundException e) {
      // No lock: nothing to do.
    }
  }

  /**
   * A lock left by a run that died while publishing: its holder is provably dead ({@link
   * RunOwner}), or it is older than {@code staleSeconds}, more than a publish (two renames) takes.
   */
  private static boolean isStale(FileSystem fs, Path lock, long staleSeconds) throws IOException {
    long age = System.currentTimeMillis() - fs.getFileStatus(lock).getModificationTime();
    return age >= staleSeconds * 1000 || RunOwner.read(fs, lock).map(RunOwner::isProvablyDead).orElse(false);
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
    // Before any rename: the marker names this run and this output, which later proves a set-aside folder is ours.
    OutputMarker.write(fs, staging, runId, qualifiedOut);
    Path lock = lock();
    acquire(lock);
    try {
      // Checked again under the lock: the folder may have changed while this run worked.
      OutputGuard.checkReplaceable(fs, out, "--out " + out, overwrite);
      swap();
    } finally {
      fs.delete(lock, false);
    }
    // The run's owner file came along with the staging folder; listings skip it, but it is no part of the output.
    fs.delete(new Path(out, RunOwner.NAME), false);
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
    byte[] owner = RunOwner.current(runId).toJson();
    if ("file".equals(fs.getUri().getScheme())) {
      java.nio.file.Files.write(OutputGuard.localPath(fs.makeQualified(lock)), owner, java.nio.file.StandardOpenOption.CREATE_NEW,
          java.nio.file.StandardOpenOption.WRITE);
      return;
    }
    try (var stream = fs.create(lock, false)) {
      stream.write(owner);
    }
  }

  private void swap() throws IOException {
    Path replaced = new Path(out.getParent(), out.getName() + REPLACED + runId);
    // Renaming onto an existing folder would move the output into it: a folder of that name is not ours.
    ValidationException.check(!fs.exists(replaced), "Cannot publish %s: %s already exists and is not this run's; move it away", out, replaced);
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
