package dev.sparkprune.jobs.options;

import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;

/**
 * Qualifies the locations a user gives, once, on the driver: a relative or scheme-less path
 * becomes a full URI against the driver's working folder and default file system, so that
 * executors (which run in folders of their own, on other nodes) read and write exactly what the
 * driver checked, and report.json and a batch's settings key record one spelling per file.
 */
public final class Locations {
  private Locations() {}

  /**
   * The location as a qualified, normalized URI ({@code data/m} run in {@code /home/a} gives
   * {@code file:/home/a/data/m} where the default file system is the local one). A URI with a
   * scheme and an authority is only normalized: qualifying it would open its file system.
   */
  public static String qualify(String location, Configuration conf) {
    ValidationException.check(!location.isBlank(), "Invalid location '%s': it is empty", location);
    Path path;
    try {
      path = new Path(location);
    } catch (IllegalArgumentException e) {
      throw new ValidationException("Invalid location " + location + ": " + e.getMessage());
    }
    URI uri = path.toUri();
    if (uri.getScheme() != null && (uri.getAuthority() != null || uri.getScheme().equals("file") && path.isAbsolute())) {
      return path.toString();
    }
    try {
      return path.getFileSystem(conf).makeQualified(path).toString();
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot open the file system of " + location, e);
    }
  }

  /** The given settings with the values of {@code locations} (a job's location keys) qualified; other keys as given. */
  public static Map<String, String> qualify(Map<String, String> given, List<OptionKey<?>> locations, Configuration conf) {
    Map<String, String> qualified = new LinkedHashMap<>(given);
    for (OptionKey<?> key : locations) {
      String value = given.get(key.name());
      if (value != null && !value.isBlank()) {
        qualified.put(key.name(), qualify(value, conf));
      }
    }
    return qualified;
  }
}
