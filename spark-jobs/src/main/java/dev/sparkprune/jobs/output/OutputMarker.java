package dev.sparkprune.jobs.output;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;

/**
 * The file {@value #NAME} that marks a folder as a sparkprune output. The publish writes it
 * last into the staging folder; it names the tool and the run and lists every file of the output
 * with its size. Only a folder with a valid marker and no file outside its list may be replaced
 * without {@code --overwrite}; the sizes tell a whole output from a partly copied one after a
 * publish whose outcome is unknown.
 */
public record OutputMarker(String runId, Map<String, Long> files) {
  public static final String NAME = "_SPARKPRUNE_SUCCESS";
  static final String TOOL = "sparkprune";
  /** A marker lists a few hundred files; anything near this cap is not one. */
  private static final long MAX_BYTES = 16L << 20;
  private static final ObjectMapper JSON = new ObjectMapper();

  public OutputMarker {
    Objects.requireNonNull(runId, "runId is null");
    files = new TreeMap<>(Objects.requireNonNull(files, "files is null"));
  }

  /** Lists {@code folder} and writes its marker. */
  static OutputMarker write(FileSystem fs, Path folder, String runId) throws IOException {
    OutputMarker marker = new OutputMarker(runId, list(fs, folder));
    ObjectNode json = JSON.createObjectNode();
    json.put("tool", TOOL);
    json.put("version", 1);
    json.put("run_id", runId);
    ObjectNode listed = json.putObject("files");
    marker.files.forEach(listed::put);
    // Without the checksum file Hadoop's local file system would write beside it, as report.json.
    FileSystem target = fs instanceof org.apache.hadoop.fs.LocalFileSystem local ? local.getRawFileSystem() : fs;
    try (var stream = target.create(new Path(folder, NAME), true)) {
      stream.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(json));
    }
    return marker;
  }

  /** The folder's marker; empty when it has none or one that is not a sparkprune marker. */
  static Optional<OutputMarker> read(FileSystem fs, Path folder) throws IOException {
    FileStatus status;
    try {
      status = fs.getFileStatus(new Path(folder, NAME));
    } catch (FileNotFoundException e) {
      return Optional.empty();
    }
    if (!status.isFile() || status.getLen() > MAX_BYTES) {
      return Optional.empty();
    }
    byte[] bytes = new byte[(int) status.getLen()];
    try (FSDataInputStream in = fs.open(status.getPath())) {
      in.readFully(0, bytes);
    }
    JsonNode json;
    try {
      json = JSON.readTree(new String(bytes, StandardCharsets.UTF_8));
    } catch (IOException e) {
      return Optional.empty();
    }
    if (json == null || !TOOL.equals(json.path("tool").asText()) || !json.path("files").isObject()) {
      return Optional.empty();
    }
    Map<String, Long> files = new TreeMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = json.get("files").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> entry = it.next();
      if (!entry.getValue().canConvertToLong()) {
        return Optional.empty();
      }
      files.put(entry.getKey(), entry.getValue().asLong());
    }
    return Optional.of(new OutputMarker(json.path("run_id").asText(), files));
  }

  /** Every file under {@code folder} but the marker, by path relative to it, with its size. */
  static Map<String, Long> list(FileSystem fs, Path folder) throws IOException {
    String base = fs.makeQualified(folder).toUri().getPath();
    String prefix = base.endsWith("/") ? base : base + "/";
    Map<String, Long> files = new TreeMap<>();
    RemoteIterator<LocatedFileStatus> statuses = fs.listFiles(folder, true);
    while (statuses.hasNext()) {
      LocatedFileStatus status = statuses.next();
      String path = status.getPath().toUri().getPath();
      String relative = path.startsWith(prefix) ? path.substring(prefix.length()) : path;
      if (!relative.equals(NAME)) {
        files.put(relative, status.getLen());
      }
    }
    return files;
  }

  /** Files present now that the marker does not list: someone else's data. */
  java.util.Set<String> unlisted(Map<String, Long> present) {
    java.util.Set<String> extra = new java.util.TreeSet<>(present.keySet());
    extra.removeAll(files.keySet());
    return extra;
  }

  /** Whether {@code present} is exactly the listed files with their sizes: a whole output. */
  boolean isWhole(Map<String, Long> present) {
    return files.equals(present);
  }
}
