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
 * The rules that keep a run from destroying data, for every output a command writes ({@code
 * --out} of prune and shrink, {@code eval --report}, a batch's status table), checked on the
 * driver before any work and again at publish:
 *
 * <ul>
 *   <li>an output may not equal, lie inside or contain an input, in any spelling: paths are
 *       compared qualified ({@link FileSystem#makeQualified}, which also folds {@code .}, {@code
 *       ..} and repeated slashes) and, on the local file system, with the symlinks of their
 *       longest existing prefix resolved;
 *   <li>an existing output is replaced only when it is an empty folder, a sparkprune output whose
 *       marker ({@link OutputMarker}) lists every file in it, none changed since, or when {@code
 *       --overwrite} says so; a file output (a report) only with {@code --overwrite}; a folder
 *       that is a dangling symbolic link never;
 *   <li>folders are listed with the raw file system, so hidden {@code .*.crc} files count;
 *   <li>the nearest existing ancestor must be a folder this process may write into.
 * </ul>
 */
public final class OutputGuard {
  private OutputGuard() {}

  /** What an output is, which decides what may be replaced. */
  public enum Kind {
    /** A folder published whole (--out): replaced only if it is sparkprune's, or with --overwrite. */
    FOLDER,
    /** A folder written into in place (a batch's status table): only one that is sparkprune's; no overwrite. */
    APPENDED_FOLDER,
    /** One file (eval --report): an existing one only with --overwrite. */
    FILE
  }

  /**
   * Every check of one output before any work: the rules of {@link #checkOutput} for the
   * request's kind, and for a folder published whole, no other run publishing to it.
   */
  public static void check(Configuration conf, OutputRequest request) throws IOException {
    checkOutput(conf, request.option(), request.out(), request.kind(), request.overwrite(), request.inputs());
    if (request.kind() == Kind.FOLDER) {
      Publisher.checkNotLocked(conf, new Path(request.out()));
    }
  }

  /**
   * The rules for one output, from plain values: {@code option} names it in messages ("--out",
   * "--report"), {@code location} is where it goes, {@code overwrite} whether the user allowed
   * replacing what is not sparkprune's (ignored for {@link Kind#APPENDED_FOLDER}), and {@code
   * inputs} maps each input's name to its location. Refuses, with one line: an output that is,
   * lies inside or contains an input; a dangling symbolic link; an unwritable or file parent;
   * an existing target the rules do not let this run replace.
   */
  public static void checkOutput(Configuration conf, String option, String location, Kind kind, boolean overwrite,
      Map<String, String> inputs) throws IOException {
    checkSeparate(conf, option, location, kind, inputs);
    Path path = new Path(location);
    FileSystem fs = path.getFileSystem(conf);
    checkNotDangling(fs, path, option + " " + location);
    checkParent(fs, path, option + " " + location);
    checkReplaceable(fs, path, option + " " + location, kind, overwrite);
  }

  /**
   * Refuses an output that is, lies inside or contains one of the named inputs, in any spelling.
   * {@code option} names the output in messages ("--out"); {@code inputs} maps names to locations.
   */
  public static void checkSeparate(Configuration conf, String option, String location, Map<String, String> inputs) throws IOException {
    checkSeparate(conf, option, location, Kind.FOLDER, inputs);
  }

  private static void checkSeparate(Configuration conf, String option, String location, Kind kind, Map<String, String> inputs)
      throws IOException {
    Path out = qualify(conf, location);
    for (Map.Entry<String, String> input : inputs.entrySet()) {
      String relation = relation(out, qualify(conf, input.getValue()));
      ValidationException.check(relation == null,
          "Invalid %s %s: it %s %s %s, which a run must never replace or write into; choose another output %s",
          option, location, relation == null ? "" : relation.replace(" folder", kind == Kind.FILE ? " file" : " folder"), input.getKey(),
          input.getValue(), kind == Kind.FILE ? "file" : "folder");
    }
  }

  /** How {@code path} relates to {@code input} ("is the same folder as", "contains", "lies inside"), or null. */
  static String relation(Path path, Path input) {
    return path.equals(input) ? "is the same folder as" : isAncestor(path, input) ? "contains" : isAncestor(input, path) ? "lies inside" : null;
  }

  /** The first input that {@code location} is, contains or lies inside, by name; empty if none. */
  static Optional<String> touchedInput(Configuration conf, Path location, Map<String, String> inputs) throws IOException {
    Path path = qualify(conf, location.toString());
    for (Map.Entry<String, String> input : inputs.entrySet()) {
      if (relation(path, qualify(conf, input.getValue())) != null) {
        return Optional.of(input.getKey() + " " + input.getValue());
      }
    }
    return Optional.empty();
  }

  /**
   * A symbolic link to nothing: the rename at publish would fail after the whole job, or replace
   * the link instead of writing where it points.
   */
  static void checkNotDangling(FileSystem fs, Path path, String option) {
    if (!"file".equals(fs.getUri().getScheme())) {
      return;
    }
    java.nio.file.Path local = localPath(fs.makeQualified(path));
    if (java.nio.file.Files.isSymbolicLink(local) && !java.nio.file.Files.exists(local)) {
      String target;
      try {
        target = java.nio.file.Files.readSymbolicLink(local).toString();
      } catch (IOException e) {
        target = "a missing file";
      }
      throw new ValidationException("Invalid " + option + ": it is a symbolic link to " + target
          + ", which does not exist; remove the link or choose another output");
    }
  }

  /** The java.nio path of a qualified local path, from its decoded path (a URI with raw non-ASCII is not one java.nio takes). */
  public static java.nio.file.Path localPath(Path qualified) {
    return java.nio.file.Paths.get(qualified.toUri().getPath());
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
    java.nio.file.Path local = java.nio.file.Paths.get(uri.getPath()).normalize();
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
      if ("file".equals(fs.getUri().getScheme())) {
        writable = java.nio.file.Files.isWritable(localPath(fs.makeQualified(ancestor)));
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
   * Whether an existing output may be replaced: a missing target; for folders an empty one, a
   * sparkprune output holding nothing it did not write and nothing changed since, or anything
   * (but a file) under {@code overwrite}; for a file only {@code overwrite}. Listed raw, so
   * hidden checksum files count.
   */
  public static void checkReplaceable(FileSystem fs, Path out, String option, boolean overwrite) throws IOException {
    checkReplaceable(fs, out, option, Kind.FOLDER, overwrite);
  }

  static void checkReplaceable(FileSystem fs, Path out, String option, Kind kind, boolean overwrite) throws IOException {
    FileSystem raw = OutputMarker.raw(fs);
    FileStatus status;
    try {
      status = raw.getFileStatus(out);
    } catch (FileNotFoundException e) {
      return;
    }
    if (kind == Kind.FILE) {
      ValidationException.check(!status.isDirectory(), "Invalid %s: it is a folder (give a file path)", option);
      ValidationException.check(overwrite, "Cannot replace %s: the file exists; add --overwrite to replace it, or choose another file", option);
      return;
    }
    ValidationException.check(status.isDirectory(), "Invalid %s: it exists and is a file, not a folder; choose another output folder", option);
    String remedy = kind == Kind.FOLDER ? "choose another output folder, or add --overwrite to replace it whole" : "move it away or choose another output folder";
    String verb = kind == Kind.FOLDER ? "replace" : "write into";
    if (overwrite && kind == Kind.FOLDER) {
      return;
    }
    if (raw.listStatus(out).length == 0) {
      return;
    }
    Optional<OutputMarker> marker = OutputMarker.read(raw, out);
    ValidationException.check(marker.isPresent(),
        "Cannot %s %s: it exists and is not a sparkprune output (no %s); %s", verb, option, OutputMarker.NAME, remedy);
    Map<String, Long> present = OutputMarker.list(raw, out);
    Set<String> unlisted = marker.get().unlisted(present);
    ValidationException.check(unlisted.isEmpty(),
        "Cannot %s %s: it is a sparkprune output but also holds %s, which sparkprune did not write; move them, %s",
        verb, option, some(unlisted), remedy);
    Set<String> changed = marker.get().changed(raw, out, present);
    ValidationException.check(changed.isEmpty(),
        "Cannot %s %s: it is a sparkprune output but %s changed after it was written (size or content differs from its %s); "
            + "keep the edited files elsewhere, %s",
        verb, option, some(changed), OutputMarker.NAME, remedy);
  }

  /** At most three names, then how many more. */
  private static String some(Set<String> names) {
    return names.size() > 3 ? names.stream().limit(3).toList() + " and " + (names.size() - 3) + " more" : names.toString();
  }
}
