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
 * output under its replaced name; the next run restores it before anything else. Object stores
 * (s3a) have no atomic rename: there the publish is a copy and is not atomic.
 */
final class Publisher {
  private static final String STAGING = ".staging-";
  private static final String REPLACED = ".replaced-";

  private final FileSystem fs;
  private final Path out;
  private final Path staging;
  private final String runId;

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
      if (!fs.exists(out)) {
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

  String staging() {
    return staging.toString();
  }

  String out() {
    return out.toString();
  }

  /** Moves the staged output into place; an earlier output is replaced only after this run succeeded. */
  void publish() throws IOException {
    Path replaced = new Path(out.getParent(), out.getName() + REPLACED + runId);
    boolean hadOutput = fs.exists(out);
    if (hadOutput && !fs.rename(out, replaced)) {
      throw new IOException("Cannot publish: renaming the earlier output " + out + " aside failed; it is untouched");
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
