package dev.sparkprune.jobs.eval;

import static java.util.Objects.requireNonNull;

import dev.sparkprune.jobs.text.TextSource;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/** The documents of one task file (JSONL, one document per line), named after the file. */
public record TaskSet(String name, String location, TaskFormat format, List<TaskDocument> documents) {
  public TaskSet {
    requireNonNull(name, "name is null");
    requireNonNull(location, "location is null");
    requireNonNull(format, "format is null");
    documents = List.copyOf(documents);
  }

  /**
   * Reads and checks every document. A bad row fails naming the file and line: malformed JSON, a
   * missing or mistyped field, a label outside the choices.
   *
   * @param override the format to use instead of detecting it from the first document
   */
  public static TaskSet read(HadoopFileIO io, String location, Optional<String> override) throws IOException {
    Path path = new Path(location);
    FileSystem fs = io.fileSystem(path);
    try {
      ValidationException.check(fs.getFileStatus(path).isFile(), "Cannot read task file %s: it is not a file", location);
    } catch (FileNotFoundException e) {
      throw new ValidationException("Cannot read task file " + location + ": file not found");
    }
    TaskFormat[] format = {override.map(TaskFormat::named).orElse(null)};
    List<TaskDocument> documents = new ArrayList<>();
    TextSource.forEachJsonLine(fs, path, (line, node) -> {
      try {
        ValidationException.check(node != null && node.isObject(), "expected a JSON object");
        if (format[0] == null) {
          format[0] = TaskFormat.detect(node);
        }
        documents.add(format[0].document(line, node));
      } catch (ValidationException e) {
        throw new ValidationException("Invalid task file " + location + " line " + line + ": " + e.getMessage());
      }
      return true;
    });
    ValidationException.check(!documents.isEmpty(), "Cannot read task file %s: it has no documents", location);
    return new TaskSet(nameOf(path), location, format[0], documents);
  }

  /** The file name without its extension: {@code arc_easy.jsonl} is task {@code arc_easy}. */
  private static String nameOf(Path path) {
    String name = path.getName();
    int dot = name.indexOf('.');
    return dot > 0 ? name.substring(0, dot) : name;
  }

  /** How many requests (document x choice) the task scores. */
  public int requests() {
    int requests = 0;
    for (TaskDocument document : documents) {
      requests += document.choices().length;
    }
    return requests;
  }
}
