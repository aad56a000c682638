package dev.sparkprune.jobs.text;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.BufferedReader;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.parquet.hadoop.metadata.ParquetMetadata;
import org.apache.parquet.schema.MessageType;

/**
 * Documents from a text file or folder on any Hadoop URI: plain text (one document), JSONL
 * ({@code text} field per line) or Parquet ({@code text} column). A folder contributes its
 * files of a known kind in name order.
 */
public final class TextSource {
  public static final String TEXT_FIELD = "text";
  public static final String TOKENS_FIELD = "input_ids";
  /**
   * Most characters one text source may supply (256 Mi; WikiText-2's test split has 1.3 M):
   * sources are tokenized in memory on the driver, so a larger one would end in an
   * OutOfMemoryError rather than a message.
   */
  public static final long MAX_CHARS = 256L << 20;

  private static final ObjectMapper JSON = new ObjectMapper();

  private TextSource() {}

  /** Every document of the source, in order (at most {@link #MAX_CHARS} characters in all). */
  public static List<String> read(HadoopFileIO io, String location) throws IOException {
    return readPrefix(io, location, Long.MAX_VALUE).documents();
  }

  /**
   * The documents in order until about {@code chars} characters (counting a blank line between
   * documents) are in hand: whole documents, and the last one cut just before a whitespace
   * character that follows a word, so that only the last word's tokens can differ from those of
   * the whole text. {@link Documents#complete()} says whether the source ended first.
   */
  public static Documents readPrefix(HadoopFileIO io, String location, long chars) throws IOException {
    Path path = new Path(location);
    FileSystem fs = io.fileSystem(path);
    Reading reading = new Reading(location, chars);
    for (Path file : dataFiles(fs, path, location)) {
      if (!readFile(fs, file, reading)) {
        break;
      }
    }
    ValidationException.check(!reading.documents.isEmpty(), "Cannot read text %s: no documents found", location);
    return new Documents(reading.documents, reading.complete);
  }

  /**
   * Checks a source before any job starts: it exists, holds only regular files (a device such
   * as /dev/zero never ends), its Parquet files have readable footers with a text or input_ids
   * column, and read whole it fits {@link #MAX_CHARS}. Nothing but footers is read.
   */
  public static Checked check(HadoopFileIO io, String location) throws IOException {
    Path path = new Path(location);
    FileSystem fs = io.fileSystem(path);
    long bytes = 0;
    long tokenRows = 0;
    boolean allTokens = true;
    for (Path file : dataFiles(fs, path, location)) {
      if (file.getName().toLowerCase(Locale.ROOT).endsWith(".parquet")) {
        ParquetMetadata footer = parquet(file, () -> ParquetFileReader.readFooter(fs.getConf(), file));
        MessageType schema = footer.getFileMetaData().getSchema();
        ValidationException.check(
            schema.containsField(TEXT_FIELD) || schema.containsField(TOKENS_FIELD),
            "Invalid Parquet %s: no column '%s' or '%s'", file, TEXT_FIELD, TOKENS_FIELD);
        allTokens &= schema.containsField(TOKENS_FIELD);
        tokenRows += footer.getBlocks().stream().mapToLong(block -> block.getRowCount()).sum();
      } else {
        allTokens = false;
        bytes += fs.getFileStatus(file).getLen();
      }
    }
    // A character takes at most 4 bytes of UTF-8: beyond 4 x the limit a source surely holds too
    // many; one below it may still stop while being read.
    ValidationException.check(
        bytes <= 4 * MAX_CHARS, "Cannot read text %s: %d bytes, over the limit of %d characters for a text source; use a sample of it",
        location, bytes, MAX_CHARS);
    return new Checked(allTokens ? OptionalLong.of(tokenRows) : OptionalLong.empty());
  }

  /** What checking a source learned from its footers: the input_ids rows of a pre-tokenized Parquet source. */
  public record Checked(OptionalLong tokenRows) {}

  /** Documents read from a source, and whether the source ended before the reading stopped. */
  public record Documents(List<String> documents, boolean complete) {
    public Documents {
      documents = List.copyOf(documents);
    }
  }

  /** The documents read so far, their characters, and where to stop. */
  private static final class Reading {
    final String location;
    final long stopAt;
    final List<String> documents = new ArrayList<>();
    long chars;
    boolean complete = true;

    Reading(String location, long stopAt) {
      this.location = location;
      this.stopAt = stopAt;
    }

    /** Adds a document; false once enough characters are in hand. */
    boolean add(String document) {
      chars += document.length() + (documents.isEmpty() ? 0 : 2);
      documents.add(document);
      ValidationException.check(
          chars <= MAX_CHARS, "Cannot read text %s: over the limit of %d characters for a text source; use a sample of it", location, MAX_CHARS);
      if (chars >= stopAt) {
        complete = false;
        return false;
      }
      return true;
    }

    /** Where a document that runs past the stop may be cut, or -1 to read on. */
    int cut(StringBuilder text) {
      long before = chars + (documents.isEmpty() ? 0 : 2);
      int from = (int) Math.max(1, Math.min(text.length(), stopAt - before));
      for (int i = from; i < text.length(); i++) {
        if (Character.isWhitespace(text.charAt(i)) && !Character.isWhitespace(text.charAt(i - 1))) {
          return i;
        }
      }
      ValidationException.check(
          before + text.length() <= MAX_CHARS,
          "Cannot read text %s: over the limit of %d characters for a text source; use a sample of it", location, MAX_CHARS);
      return -1;
    }
  }

  /** The file itself, or a folder's data files in name order (skipping _SUCCESS, .crc and the like). */
  private static List<Path> dataFiles(FileSystem fs, Path path, String location) throws IOException {
    FileStatus status;
    try {
      status = fs.getFileStatus(path);
    } catch (FileNotFoundException e) {
      throw new ValidationException("Cannot read text " + location + ": file not found");
    }
    List<Path> files = new ArrayList<>();
    if (!status.isDirectory()) {
      files.add(checkRegular(fs, status, location));
      return files;
    }
    FileStatus[] children = fs.listStatus(path);
    java.util.Arrays.sort(children, (a, b) -> a.getPath().getName().compareTo(b.getPath().getName()));
    for (FileStatus child : children) {
      String name = child.getPath().getName();
      if (child.isFile() && !name.startsWith("_") && !name.startsWith(".")) {
        files.add(checkRegular(fs, child, location));
      }
    }
    return files;
  }

  /** Hadoop's local file system reports devices and pipes as files; a device may never end. */
  private static Path checkRegular(FileSystem fs, FileStatus status, String location) {
    boolean regular = status.isFile();
    if (regular && "file".equals(fs.getUri().getScheme())) {
      regular = Files.isRegularFile(Paths.get(fs.makeQualified(status.getPath()).toUri()));
    }
    ValidationException.check(
        regular, "Cannot read text %s: %s is not a regular file (a device or pipe); give a file or a folder of files", location,
        status.getPath());
    return status.getPath();
  }

  /** A Parquet call whose failure on a file that is not Parquet (bad magic, a huge footer) is bad input. */
  private static <T> T parquet(Path file, ParquetCall<T> call) throws IOException {
    try {
      return call.run();
    } catch (ValidationException e) {
      throw e;
    } catch (RuntimeException e) {
      throw new ValidationException("Invalid Parquet " + file + ": " + e.getMessage() + " (is it a Parquet file?)", e);
    }
  }

  @FunctionalInterface
  private interface ParquetCall<T> {
    T run() throws IOException;
  }

  /** Receives each non-blank JSONL line, parsed; returns false to stop reading. */
  @FunctionalInterface
  public interface JsonLineVisitor {
    boolean visit(int lineNumber, JsonNode node);
  }

  /** Parses each non-blank line; a malformed one fails naming file and line. Returns false if stopped. */
  public static boolean forEachJsonLine(FileSystem fs, Path path, JsonLineVisitor visitor) throws IOException {
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(fs.open(path), StandardCharsets.UTF_8))) {
      int lineNumber = 0;
      for (String line; (line = reader.readLine()) != null; ) {
        lineNumber++;
        if (line.isBlank()) {
          continue;
        }
        JsonNode node;
        try {
          node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
          throw new ValidationException("Invalid JSONL " + path + " line " + lineNumber + ": " + e.getOriginalMessage());
        }
        if (!visitor.visit(lineNumber, node)) {
          return false;
        }
      }
    }
    return true;
  }

  /** Reads one data file's documents; false once enough characters are in hand. */
  private static boolean readFile(FileSystem fs, Path path, Reading reading) throws IOException {
    String name = path.getName().toLowerCase(Locale.ROOT);
    if (name.endsWith(".parquet")) {
      return readParquet(fs, path, reading);
    }
    if (name.endsWith(".jsonl") || name.endsWith(".json")) {
      return readJsonLines(fs, path, reading);
    }
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(fs.open(path), StandardCharsets.UTF_8))) {
      StringBuilder text = new StringBuilder();
      char[] buffer = new char[1 << 16];
      for (int read; (read = reader.read(buffer)) > 0; ) {
        text.append(buffer, 0, read);
        int cut = reading.cut(text);
        if (cut >= 0) {
          text.setLength(cut);
          reading.add(text.toString());
          reading.complete = false;
          return false;
        }
      }
      return reading.add(text.toString());
    }
  }

  private static boolean readJsonLines(FileSystem fs, Path path, Reading reading) throws IOException {
    return forEachJsonLine(fs, path, (lineNumber, node) -> {
      JsonNode text = node == null ? null : node.get(TEXT_FIELD);
      ValidationException.check(
          text != null && text.isTextual(), "Invalid JSONL %s line %d: no string field '%s'", path, lineNumber, TEXT_FIELD);
      return reading.add(text.textValue());
    });
  }

  /**
   * Pre-tokenized samples: the {@code input_ids} of each JSONL line or Parquet row, in order;
   * empty when the source is plain text or has no such field.
   */
  public static java.util.Optional<List<int[]>> readTokenIds(HadoopFileIO io, String location) throws IOException {
    Path path = new Path(location);
    FileSystem fs = io.fileSystem(path);
    List<int[]> samples = new ArrayList<>();
    for (Path file : dataFiles(fs, path, location)) {
      String name = file.getName().toLowerCase(Locale.ROOT);
      if (name.endsWith(".parquet")) {
        if (!readParquetTokens(fs, file, samples)) {
          return java.util.Optional.empty();
        }
      } else if (name.endsWith(".jsonl") || name.endsWith(".json")) {
        if (!readJsonTokens(fs, file, samples)) {
          return java.util.Optional.empty();
        }
      } else {
        return java.util.Optional.empty();
      }
    }
    return samples.isEmpty() ? java.util.Optional.empty() : java.util.Optional.of(samples);
  }

  private static boolean readJsonTokens(FileSystem fs, Path path, List<int[]> samples) throws IOException {
    return forEachJsonLine(fs, path, (lineNumber, node) -> {
      JsonNode ids = node == null ? null : node.get(TOKENS_FIELD);
      if (ids == null) {
        ValidationException.check(samples.isEmpty(), "Invalid JSONL %s line %d: no '%s' array", path, lineNumber, TOKENS_FIELD);
        return false;
      }
      ValidationException.check(ids.isArray(), "Invalid JSONL %s line %d: '%s' is not an array", path, lineNumber, TOKENS_FIELD);
      int[] sample = new int[ids.size()];
      for (int i = 0; i < sample.length; i++) {
        // An integral JSON number only: 3.7 (or 3.0) is not a token id, and truncating it would pick another token.
        ValidationException.check(ids.get(i).isIntegralNumber() && ids.get(i).canConvertToInt(),
            "Invalid JSONL %s line %d: %s[%d] = %s is not a token id (an integer)", path, lineNumber, TOKENS_FIELD, i, ids.get(i));
        sample[i] = ids.get(i).intValue();
      }
      samples.add(sample);
      return true;
    });
  }

  @SuppressWarnings("deprecation")
  private static boolean readParquetTokens(FileSystem fs, Path path, List<int[]> samples) throws IOException {
    try (ParquetReader<Group> reader = parquet(path, () -> ParquetReader.builder(new GroupReadSupport(), path).withConf(fs.getConf()).build())) {
      for (Group row; (row = parquet(path, reader::read)) != null; ) {
        if (!row.getType().containsField(TOKENS_FIELD)) {
          return false;
        }
        List<Long> ids = new ArrayList<>();
        collectIntegers(path, row, row.getType().getFieldIndex(TOKENS_FIELD), ids);
        int[] sample = new int[ids.size()];
        for (int i = 0; i < sample.length; i++) {
          long id = ids.get(i);
          ValidationException.check(
              id >= Integer.MIN_VALUE && id <= Integer.MAX_VALUE, "Invalid Parquet %s: %s[%d] = %d is not a token id", path, TOKENS_FIELD, i, id);
          sample[i] = (int) id;
        }
        samples.add(sample);
      }
    }
    return true;
  }

  /** Integers of a field, through any list nesting (Parquet's 3-level LIST or a repeated int). */
  private static void collectIntegers(Path path, Group group, int field, List<Long> out) {
    var type = group.getType().getType(field);
    for (int i = 0; i < group.getFieldRepetitionCount(field); i++) {
      if (type.isPrimitive()) {
        var primitive = type.asPrimitiveType().getPrimitiveTypeName();
        // Floating-point or text columns are not token ids (a float 3.7 would be read as some other id).
        ValidationException.check(
            primitive == org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName.INT32
                || primitive == org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName.INT64,
            "Invalid Parquet %s: column %s holds %s values; token ids are integers (INT32 or INT64)", path, TOKENS_FIELD, primitive);
        out.add(primitive == org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName.INT64 ? group.getLong(field, i) : group.getInteger(field, i));
      } else {
        Group child = group.getGroup(field, i);
        for (int f = 0; f < child.getType().getFieldCount(); f++) {
          collectIntegers(path, child, f, out);
        }
      }
    }
  }

  @SuppressWarnings("deprecation")
  private static boolean readParquet(FileSystem fs, Path path, Reading reading) throws IOException {
    try (ParquetReader<Group> reader = parquet(path, () -> ParquetReader.builder(new GroupReadSupport(), path).withConf(fs.getConf()).build())) {
      for (Group row; (row = parquet(path, reader::read)) != null; ) {
        ValidationException.check(
            row.getType().containsField(TEXT_FIELD), "Invalid Parquet %s: no column '%s'", path, TEXT_FIELD);
        if (row.getFieldRepetitionCount(TEXT_FIELD) > 0 && !reading.add(row.getString(TEXT_FIELD, 0))) {
          return false;
        }
      }
    }
    return true;
  }
}
