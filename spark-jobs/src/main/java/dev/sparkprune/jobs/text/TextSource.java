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
  private static final ObjectMapper JSON = new ObjectMapper();

  private TextSource() {}

  public static List<String> read(HadoopFileIO io, String location) throws IOException {
    Path path = new Path(location);
    FileSystem fs = io.fileSystem(path);
    FileStatus status;
    try {
      status = fs.getFileStatus(path);
    } catch (FileNotFoundException e) {
      throw new ValidationException("Cannot read text " + location + ": file not found");
    }
    List<String> documents = new ArrayList<>();
    if (status.isDirectory()) {
      FileStatus[] children = fs.listStatus(path);
      java.util.Arrays.sort(children, (a, b) -> a.getPath().getName().compareTo(b.getPath().getName()));
      for (FileStatus child : children) {
        String name = child.getPath().getName();
        if (child.isFile() && !name.startsWith("_") && !name.startsWith(".")) {
          readFile(fs, child.getPath(), documents);
        }
      }
    } else {
      readFile(fs, path, documents);
    }
    ValidationException.check(!documents.isEmpty(), "Cannot read text %s: no documents found", location);
    return documents;
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
        JsonNode text = node == null ? null : node.get(TEXT_FIELD);
        ValidationException.check(
            text != null && text.isTextual(), "Invalid JSONL %s line %d: no string field '%s'", path, lineNumber, TEXT_FIELD);
        documents.add(text.textValue());
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
