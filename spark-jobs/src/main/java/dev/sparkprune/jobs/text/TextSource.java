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
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;

/**
 * Documents from a text file or folder on any Hadoop URI: plain text (one document), JSONL
 * ({@code text} field per line) or Parquet ({@code text} column). A folder contributes its
 * files of a known kind in name order.
 */
public final class TextSource {
  public static final String TEXT_FIELD = "text";
  public static final String TOKENS_FIELD = "input_ids";
  private static final ObjectMapper JSON = new ObjectMapper();

  private TextSource() {}

  public static List<String> read(HadoopFileIO io, String location) throws IOException {
    Path path = new Path(location);
    FileSystem fs = io.fileSystem(path);
    List<String> documents = new ArrayList<>();
    for (Path file : dataFiles(fs, path, location)) {
      readFile(fs, file, documents);
    }
    ValidationException.check(!documents.isEmpty(), "Cannot read text %s: no documents found", location);
    return documents;
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
      files.add(path);
      return files;
    }
    FileStatus[] children = fs.listStatus(path);
    java.util.Arrays.sort(children, (a, b) -> a.getPath().getName().compareTo(b.getPath().getName()));
    for (FileStatus child : children) {
      String name = child.getPath().getName();
      if (child.isFile() && !name.startsWith("_") && !name.startsWith(".")) {
        files.add(child.getPath());
      }
    }
    return files;
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

  private static void readFile(FileSystem fs, Path path, List<String> documents) throws IOException {
    String name = path.getName().toLowerCase(Locale.ROOT);
    if (name.endsWith(".parquet")) {
      readParquet(fs, path, documents);
    } else if (name.endsWith(".jsonl") || name.endsWith(".json")) {
      readJsonLines(fs, path, documents);
    } else {
      try (BufferedReader reader = new BufferedReader(new InputStreamReader(fs.open(path), StandardCharsets.UTF_8))) {
        StringBuilder text = new StringBuilder();
        char[] buffer = new char[1 << 16];
        for (int read; (read = reader.read(buffer)) > 0; ) {
          text.append(buffer, 0, read);
        }
        documents.add(text.toString());
      }
    }
  }

  private static void readJsonLines(FileSystem fs, Path path, List<String> documents) throws IOException {
    forEachJsonLine(fs, path, (lineNumber, node) -> {
      JsonNode text = node == null ? null : node.get(TEXT_FIELD);
      ValidationException.check(
          text != null && text.isTextual(), "Invalid JSONL %s line %d: no string field '%s'", path, lineNumber, TEXT_FIELD);
      documents.add(text.textValue());
      return true;
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
        ValidationException.check(
            ids.get(i).canConvertToInt(), "Invalid JSONL %s line %d: %s[%d] is not a token id", path, lineNumber, TOKENS_FIELD, i);
        sample[i] = ids.get(i).intValue();
      }
      samples.add(sample);
      return true;
    });
  }

  @SuppressWarnings("deprecation")
  private static boolean readParquetTokens(FileSystem fs, Path path, List<int[]> samples) throws IOException {
    try (ParquetReader<Group> reader = ParquetReader.builder(new GroupReadSupport(), path).withConf(fs.getConf()).build()) {
      for (Group row; (row = reader.read()) != null; ) {
        if (!row.getType().containsField(TOKENS_FIELD)) {
          return false;
        }
        List<Long> ids = new ArrayList<>();
        collectIntegers(row, row.getType().getFieldIndex(TOKENS_FIELD), ids);
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
  private static void collectIntegers(Group group, int field, List<Long> out) {
    var type = group.getType().getType(field);
    for (int i = 0; i < group.getFieldRepetitionCount(field); i++) {
      if (type.isPrimitive()) {
        var primitive = type.asPrimitiveType().getPrimitiveTypeName();
        out.add(primitive == org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName.INT64 ? group.getLong(field, i) : group.getInteger(field, i));
      } else {
        Group child = group.getGroup(field, i);
        for (int f = 0; f < child.getType().getFieldCount(); f++) {
          collectIntegers(child, f, out);
        }
      }
    }
  }

  @SuppressWarnings("deprecation")
  private static void readParquet(FileSystem fs, Path path, List<String> documents) throws IOException {
    try (ParquetReader<Group> reader = ParquetReader.builder(new GroupReadSupport(), path).withConf(fs.getConf()).build()) {
      for (Group row; (row = reader.read()) != null; ) {
        ValidationException.check(
            row.getType().containsField(TEXT_FIELD), "Invalid Parquet %s: no column '%s'", path, TEXT_FIELD);
        if (row.getFieldRepetitionCount(TEXT_FIELD) > 0) {
          documents.add(row.getString(TEXT_FIELD, 0));
        }
      }
    }
  }
}
