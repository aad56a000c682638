package dev.sparkprune.jobs.output;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.ChecksumFileSystem;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;

/**
 * The file {@value #NAME} that marks a folder as a sparkprune output. The publish writes it
 * last into the staging folder; it names the tool, the run and the output it was staged for,
 * and lists every file of the output with its size and a digest. Only a folder with a valid
 * marker, no file outside its list and no listed file changed since may be replaced without
 * {@code --overwrite}; the marker's run and output name prove that a set-aside folder beside
 * the output is this tool's own.
 *
 * <p>Folders are listed with the raw file system: Hadoop's checksummed local file system hides
 * {@code .*.crc} files from listings, and a user's file of that name is data like any other.
 */
public record OutputMarker(String runId, String out, Map<String, Long> files, Map<String, String> digests) {
  public static final String NAME = "_SPARKPRUNE_SUCCESS";
  static final String TOOL = "sparkprune";
  /** Version 1 listed sizes only, through the checksummed listing (no .crc files). */
  private static final int VERSION = 2;
  /** A marker lists a few hundred files; anything near this cap is not one. */
  private static final long MAX_BYTES = 16L << 20;
  /** Files up to this size are digested whole (configs, reports, small masks). */
  private static final long WHOLE_DIGEST_BYTES = 64 << 10;
  /** Larger files: this many blocks spread evenly from the first byte to the last (a fine-tune changes them all). */
  private static final int SAMPLES = 16;
  private static final int SAMPLE_BYTES = 4 << 10;
  private static final ObjectMapper JSON = new ObjectMapper();

  public OutputMarker {
    Objects.requireNonNull(runId, "runId is null");
    Objects.requireNonNull(out, "out is null");
    files = new TreeMap<>(Objects.requireNonNull(files, "files is null"));
    digests = new TreeMap<>(Objects.requireNonNull(digests, "digests is null"));
  }

  /**
   * Marks {@code folder} as this tool's own (a folder written in place rather than published,
   * such as a batch's status table): lists it and writes its marker.
   */
  public static void mark(Configuration conf, String folder, String runId) throws IOException {
    Path path = new Path(folder);
    FileSystem fs = path.getFileSystem(conf);
    write(fs, path, runId, fs.makeQualified(path).toString());
  }

  /** Lists {@code folder} and writes its marker, naming {@code out}, the qualified output it is for. */
  static OutputMarker write(FileSystem fs, Path folder, String runId, String out) throws IOException {
    FileSystem raw = raw(fs);
    Map<String, Long> files = list(raw, folder);
    Map<String, String> digests = new TreeMap<>();
    for (Map.Entry<String, Long> file : files.entrySet()) {
      digests.put(file.getKey(), digest(raw, new Path(folder, file.getKey()), file.getValue()));
    }
    OutputMarker marker = new OutputMarker(runId, out, files, digests);
    ObjectNode json = JSON.createObjectNode();
    json.put("tool", TOOL);
    json.put("version", VERSION);
    json.put("run_id", runId);
    json.put("out", out);
    ObjectNode listed = json.putObject("files");
    marker.files.forEach(listed::put);
    ObjectNode digested = json.putObject("digests");
    marker.digests.forEach(digested::put);
    // Through the raw file system: no checksum file beside it.
    try (var stream = raw.create(new Path(folder, NAME), true)) {
      stream.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(json));
    }
    return marker;
  }

  /** The folder's marker; empty when it has none or one that is not a sparkprune marker. */
  static Optional<OutputMarker> read(FileSystem fs, Path folder) throws IOException {
    FileSystem raw = raw(fs);
    FileStatus status;
    try {
      status = raw.getFileStatus(new Path(folder, NAME));
    } catch (FileNotFoundException e) {
      return Optional.empty();
    }
    if (!status.isFile() || status.getLen() > MAX_BYTES) {
      return Optional.empty();
    }
    byte[] bytes = new byte[(int) status.getLen()];
    try (FSDataInputStream in = raw.open(status.getPath())) {
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
    Map<String, String> digests = new TreeMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = json.path("digests").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> entry = it.next();
      digests.put(entry.getKey(), entry.getValue().asText());
    }
    return Optional.of(new OutputMarker(json.path("run_id").asText(), json.path("out").asText(), files, digests));
  }

  /**
   * Every file under {@code folder} but the marker and a run's owner file, by path relative to
   * it, with its size; listed raw, so hidden checksum files count.
   */
  static Map<String, Long> list(FileSystem fs, Path folder) throws IOException {
    FileSystem raw = raw(fs);
    String base = raw.makeQualified(folder).toUri().getPath();
    String prefix = base.endsWith("/") ? base : base + "/";
    Map<String, Long> files = new TreeMap<>();
    RemoteIterator<LocatedFileStatus> statuses = raw.listFiles(folder, true);
    while (statuses.hasNext()) {
      LocatedFileStatus status = statuses.next();
      String path = status.getPath().toUri().getPath();
      String relative = path.startsWith(prefix) ? path.substring(prefix.length()) : path;
      if (!relative.equals(NAME) && !relative.equals(RunOwner.NAME)) {
        files.put(relative, status.getLen());
      }
    }
    return files;
  }

  /** The file system without Hadoop's checksum layer, whose listings hide {@code .*.crc} files. */
  static FileSystem raw(FileSystem fs) {
    return fs instanceof ChecksumFileSystem checksummed ? checksummed.getRawFileSystem() : fs;
  }

  /**
   * Files present now that the marker does not list: someone else's data. A version 1 marker
   * listed through the checksummed listing, so there the checksum file {@code .x.crc} of a
   * listed {@code x} is the tool's own too; any other {@code .crc} file is not.
   */
  Set<String> unlisted(Map<String, Long> present) {
    Set<String> extra = new TreeSet<>(present.keySet());
    extra.removeAll(files.keySet());
    if (digests.isEmpty()) {
      extra.removeIf(this::isChecksumOfListed);
    }
    return extra;
  }

  private boolean isChecksumOfListed(String relative) {
    int slash = relative.lastIndexOf('/');
    String name = relative.substring(slash + 1);
    if (!name.startsWith(".") || !name.endsWith(".crc") || name.length() <= ".crc".length() + 1) {
      return false;
    }
    return files.containsKey(relative.substring(0, slash + 1) + name.substring(1, name.length() - ".crc".length()));
  }

  /**
   * Listed files present in {@code folder} whose size or digest differs from the marker's: edited
   * after the output was written (a hand-edited config, fine-tuned weights). A listed file that
   * is gone is not a change: nothing of anyone else's is in it.
   */
  Set<String> changed(FileSystem fs, Path folder, Map<String, Long> present) throws IOException {
    FileSystem raw = raw(fs);
    Set<String> changed = new TreeSet<>();
    for (Map.Entry<String, Long> file : files.entrySet()) {
      Long size = present.get(file.getKey());
      if (size == null) {
        continue;
      }
      String digest = digests.get(file.getKey());
      if (size.longValue() != file.getValue()
          || digest != null && !digest.equals(digest(raw, new Path(folder, file.getKey()), size))) {
        changed.add(file.getKey());
      }
    }
    return changed;
  }

  /** Whether {@code folder} holds exactly the listed files, unchanged: a whole output. */
  boolean isWhole(FileSystem fs, Path folder) throws IOException {
    Map<String, Long> present = list(fs, folder);
    return unlisted(present).isEmpty() && present.keySet().containsAll(files.keySet()) && changed(fs, folder, present).isEmpty();
  }

  /**
   * SHA-256 of a small file's bytes, or of {@value #SAMPLES} blocks of {@value #SAMPLE_BYTES}
   * bytes spread from the first byte to the last of a larger one, so that checking an output
   * reads at most 64 KiB per file.
   */
  static String digest(FileSystem fs, Path file, long length) throws IOException {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    try (FSDataInputStream in = fs.open(file)) {
      if (length <= WHOLE_DIGEST_BYTES) {
        byte[] bytes = new byte[(int) length];
        in.readFully(0, bytes);
        sha.update(bytes);
      } else {
        byte[] block = new byte[SAMPLE_BYTES];
        for (int i = 0; i < SAMPLES; i++) {
          in.readFully((length - SAMPLE_BYTES) * i / (SAMPLES - 1), block);
          sha.update(block);
        }
      }
    } catch (java.io.EOFException e) {
      // Shorter than listed: it changed while being read.
      return "changed";
    }
    return (length <= WHOLE_DIGEST_BYTES ? "sha256:" : "sha256-sampled:") + HexFormat.of().formatHex(sha.digest());
  }
}
