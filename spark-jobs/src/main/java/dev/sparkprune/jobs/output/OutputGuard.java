package dev.sparkprune.jobs.output;

import dev.sparkprune.tensorio.ValidationException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The rules that keep a run from destroying data, checked on the driver before any work and
 * again at publish. Paths are compared qualified ({@link FileSystem#makeQualified}, which also
 * folds {@code .}, {@code ..} and repeated slashes) and, on the local file system, with the
 * symlinks of their longest existing prefix resolved, so no spelling of an input can pass as
 * an output. An output may not equal, lie inside or contain an input; an existing output is
 * replaced only when it is empty, a sparkprune output ({@link OutputMarker}) or {@code
 * --overwrite} says so.
 */
public final class OutputGuard {
  private OutputGuard() {}

  /** Every output check of one run: separate from its inputs, writable, replaceable, not locked. */
  public static void check(Configuration conf, OutputRequest request) throws IOException {
    checkSeparate(conf, request.option(), request.out(), request.inputs());
    Path out = new Path(request.out());
    FileSystem fs = out.getFileSystem(conf);
    checkParent(fs, out, request.option() + " " + request.out());
    checkReplaceable(fs, out, request.option() + " " + request.out(), request.overwrite());
    Publisher.checkNotLocked(conf, out);
  }

  /**
   * Refuses an output that is, lies inside or contains one of the named inputs, in any spelling.
   * {@code option} names the output in messages ("--out"); {@code inputs} maps names to locations.
   */
  public static void checkSeparate(Configuration conf, String option, String location, Map<String, String> inputs) throws IOException {
    Path out = qualify(conf, location);
    for (Map.Entry<String, String> input : inputs.entrySet()) {
      Path in = qualify(conf, input.getValue());
      String relation = out.equals(in) ? "is the same folder as" : isAncestor(out, in) ? "contains" : isAncestor(in, out) ? "lies inside" : null;
      ValidationException.check(relation == null,
          "Invalid %s %s: it %s %s %s, which a run must never replace or write into; choose another output folder",
          option, location, relation, input.getKey(), input.getValue());
    }
  }

  /**
   * The location qualified and normalized; on the local file system the longest existing prefix
   * has its symlinks resolved, so a link to an input is the input.
   */
  static Path qualify(Configuration conf, String location) throws IOException {
    Path path = new Path(location);
    Path qualified = path.getFileSystem(conf).makeQualified(path);
    URI uri = qualified.toUri();
    if (!"file".equals(uri.getScheme())) {
      URI lower = URI.create(uri.getScheme().toLowerCase(Locale.ROOT) + "://"
          + (uri.getAuthority() == null ? "" : uri.getAuthority().toLowerCase(Locale.ROOT)) + uri.getRawPath());
      return new Path(lower);
    }
    java.nio.file.Path local = java.nio.file.Paths.get(uri).normalize();
    java.nio.file.Path existing = local;
    while (existing != null && !java.nio.file.Files.exists(existing)) {
      existing = existing.getParent();
    }
    java.nio.file.Path real = existing == null ? local : existing.toRealPath().resolve(existing.relativize(local)).normalize();
    // From the path string: a URI of an existing folder ends with '/', and Path keeps it.
    return new Path("file", null, real.toString());
  }

  private static boolean isAncestor(Path ancestor, Path path) {
    for (Path parent = path.getParent(); parent != null; parent = parent.getParent()) {
      if (parent.equals(ancestor)) {
        return true;
      }
    }
    return false;
  }

  /**
   * The output's nearest existing ancestor must be a folder this process may write into; an
   * unwritable one is reported as such here instead of as a failure after the whole job.
   */
  public static void checkParent(FileSystem fs, Path out, String option) throws IOException {
    ValidationException.check(out.getParent() != null, "Invalid %s: it needs a parent folder", option);
    for (Path ancestor = out.getParent(); ancestor != null; ancestor = ancestor.getParent()) {
      FileStatus status;
      try {
        status = fs.getFileStatus(ancestor);
      } catch (FileNotFoundException e) {
        continue;
      } catch (org.apache.hadoop.security.AccessControlException | java.nio.file.AccessDeniedException e) {
        throw new ValidationException("Cannot write " + option + ": permission denied on " + ancestor);
      }
      ValidationException.check(status.isDirectory(), "Cannot write %s: %s is a file, not a folder", option, ancestor);
      // Locally access(2) answers as the kernel will (root may write anywhere); elsewhere the file system's own check.
      boolean writable = true;
      if ("file".equals(fs.getScheme())) {
        writable = java.nio.file.Files.isWritable(java.nio.file.Paths.get(fs.makeQualified(ancestor).toUri()));
      } else {
        try {
          fs.access(ancestor, org.apache.hadoop.fs.permission.FsAction.WRITE);
        } catch (org.apache.hadoop.security.AccessControlException e) {
          writable = false;
        } catch (UnsupportedOperationException | IllegalArgumentException e) {
          // A file system that cannot answer access() (some local-backed ones resolve it through
          // java.nio and refuse their own scheme): the write itself will say whether it may.
          writable = true;
        }
      }
      ValidationException.check(writable, "Cannot write %s: permission denied on %s", option, ancestor);
      return;
    }
  }

  /**
   * Whether an existing output may be replaced whole: a missing or empty folder, a sparkprune
   * output holding nothing it did not write, or anything (but a file) under {@code overwrite}.
   */
  public static void checkReplaceable(FileSystem fs, Path out, String option, boolean overwrite) throws IOException {
    FileStatus status;
    try {
      status = fs.getFileStatus(out);
    } catch (FileNotFoundException e) {
      return;
    }
    ValidationException.check(status.isDirectory(), "Invalid %s: it exists and is a file, not a folder; choose another output folder", option);
    if (overwrite) {
      return;
    }
    Map<String, Long> present = OutputMarker.list(fs, out);
    if (present.isEmpty() && fs.listStatus(out).length == 0) {
      return;
    }
    Optional<OutputMarker> marker = OutputMarker.read(fs, out);
    ValidationException.check(marker.isPresent(),
        "Cannot replace %s: it exists and is not a sparkprune output (no %s); choose another output folder, or add --overwrite to replace it whole",
        option, OutputMarker.NAME);
    Set<String> unlisted = marker.get().unlisted(present);
    ValidationException.check(unlisted.isEmpty(),
        "Cannot replace %s: it is a sparkprune output but also holds %s, which sparkprune did not write; move them, choose another output folder, or add --overwrite",
        option, unlisted.size() > 3 ? unlisted.stream().limit(3).toList() + " and " + (unlisted.size() - 3) + " more" : unlisted);
  }
}
