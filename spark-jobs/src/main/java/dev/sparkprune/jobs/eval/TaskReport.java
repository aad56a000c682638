package dev.sparkprune.jobs.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkprune.scoring.model.MultipleChoice.Accuracy;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import dev.sparkprune.jobs.output.OutputGuard;
import dev.sparkprune.jobs.output.OutputRequest;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The JSON report of {@code eval --tasks}: the settings, then one object per task with its file,
 * format, counts and metrics named as lm-evaluation-harness names them ({@code acc},
 * {@code acc_stderr}, {@code acc_norm}, {@code acc_norm_stderr}); a standard error that does not
 * exist (one document) is null, lm-eval's "N/A".
 */
public final class TaskReport {
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private TaskReport() {}

  public static String json(TaskEvalOptions options, double seconds, List<TaskResult> results) {
    ObjectNode root = JSON.createObjectNode();
    root.put("model", options.model());
    root.put("max_length", options.maxLength());
    root.put("partitions", options.partitions());
    root.put("pass_size", options.requestsPerPass());
    root.put("seconds", Math.round(seconds * 1000) / 1000.0);
    ObjectNode tasks = root.putObject("tasks");
    for (TaskResult result : results) {
      ObjectNode task = tasks.putObject(result.task().name());
      task.put("file", result.task().location());
      task.put("format", result.task().format().id());
      task.put("documents", result.task().documents().size());
      task.put("requests", result.task().requests());
      put(task, "acc", result.accuracy());
      result.normalizedAccuracy().ifPresent(accuracy -> put(task, "acc_norm", accuracy));
    }
    try {
      return JSON.writeValueAsString(root);
    } catch (IOException e) {
      throw new IllegalStateException("Cannot write the task report as JSON", e);
    }
  }

  private static void put(ObjectNode task, String metric, Accuracy accuracy) {
    task.put(metric, accuracy.mean());
    if (Double.isNaN(accuracy.stderr())) {
      task.putNull(metric + "_stderr");
    } else {
      task.put(metric + "_stderr", accuracy.stderr());
    }
  }

  /**
   * Refuses, before any work, a report path the output rules forbid ({@link OutputGuard}): a
   * folder, an input (the model, a task file) or a path inside one in any spelling or through
   * symbolic links, an existing file without {@code overwrite}, an unwritable folder.
   */
  public static void checkTarget(Configuration conf, String report, Map<String, String> inputs, boolean overwrite) throws IOException {
    OutputGuard.check(conf, OutputRequest.file("--report", report, overwrite, inputs));
  }

  /** Writes the report whole: to a temporary file beside it, then renamed over any earlier one. */
  public static void write(HadoopFileIO io, String report, String json) throws IOException {
    Path path = new Path(report);
    FileSystem fs = io.fileSystem(path);
    Path temporary = new Path(path.getParent(), "." + path.getName() + ".tmp-" + UUID.randomUUID());
    try {
      try (OutputStream out = fs.create(temporary, false)) {
        out.write(json.getBytes(StandardCharsets.UTF_8));
        out.write('\n');
      }
      if (fs.exists(path)) {
        fs.delete(path, false);
      }
      if (!fs.rename(temporary, path)) {
        throw new IOException("Cannot write report " + report + ": renaming " + temporary + " failed");
      }
    } finally {
      fs.delete(temporary, false);
    }
  }
}
