package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.eval.TaskEvalJob;
import dev.sparkprune.jobs.eval.TaskEvalOptions;
import dev.sparkprune.jobs.eval.TaskReport;
import dev.sparkprune.jobs.eval.TaskResult;
import dev.sparkprune.jobs.eval.TaskSet;
import dev.sparkprune.jobs.spark.SparkSessions;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.model.MultipleChoice.Accuracy;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code sparkprune eval --tasks a.jsonl,b.jsonl}: zero-shot multiple-choice accuracy as
 * lm-evaluation-harness scores it, on Spark ({@code local[*]} without {@code --master}). Prints a
 * table, or the JSON report with {@code --json}; {@code --report URI} also writes the JSON.
 */
final class TaskEvalCommand {
  /** The options of {@code eval --tasks} only. */
  static final Set<String> OPTIONS = Set.of("task-format", "max-length", "partitions", "pass-size", "master", "report", "json");

  private TaskEvalCommand() {}

  /** Declares the --tasks options on the eval command. */
  static void addOptions(CommandSpec spec) {
    spec.addOption(Specs.option("task-format", "F", "--tasks: the files' format. Default: from each file's name or rows."));
    spec.addOption(Specs.option("max-length", "N", "--tasks: tokens per request. Default: the model's context."));
    spec.addOption(Specs.option("partitions", "N", "--tasks: Spark partitions. Default: Spark's parallelism."));
    spec.addOption(Specs.option("pass-size", "N", "--tasks: requests per forward pass. Default: "
        + TaskEvalOptions.REQUESTS_PER_PASS_DEFAULT + "."));
    spec.addOption(Specs.master());
    spec.addOption(Specs.option("report", "URI", "--tasks: also write the JSON report there."));
    spec.addOption(Specs.flag("json", "--tasks: print the JSON report instead of the table."));
  }

  static int run(Arguments line, PrintStream out) throws IOException {
    ConfKeys.checkKnown(new org.apache.spark.SparkConf());
    String model = line.require("model");
    List<String> files = taskFiles(line.require("tasks"));
    Optional<String> format = line.value("task-format");
    Optional<String> report = line.value("report");

    HadoopFileIO io = new HadoopFileIO(new Configuration());
    if (report.isPresent()) {
      TaskReport.checkTarget(io, report.get(), files);
    }
    ModelArchive archive = ModelArchive.open(io, model);
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    int maxPositions;
    String modelType;
    try (DecoderModel decoder = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      maxPositions = decoder.maxPositions();
      modelType = decoder.layout().modelType();
    }
    int maxLength = line.positiveInt("max-length", maxPositions);
    ValidationException.check(
        maxLength <= maxPositions, "Invalid --max-length %d: the model supports at most %d positions", maxLength, maxPositions);
    List<TaskSet> tasks = new ArrayList<>();
    Set<String> names = new HashSet<>();
    for (String file : files) {
      TaskSet task = TaskSet.read(io, file, format);
      ValidationException.check(names.add(task.name()), "Invalid --tasks: two files give task name '%s'", task.name());
      tasks.add(task);
    }

    long start = System.nanoTime();
    SparkSession spark = SparkSessions.getOrCreate(line.value("master").orElse(null));
    TaskEvalOptions options = new TaskEvalOptions(
        model,
        maxLength,
        line.positiveInt("partitions", spark.sparkContext().defaultParallelism()),
        line.positiveInt("pass-size", TaskEvalOptions.REQUESTS_PER_PASS_DEFAULT));
    List<TaskResult> results = TaskEvalJob.run(spark, io.conf(), tokenizer, tasks, options);
    double seconds = (System.nanoTime() - start) / 1e9;
    String json = TaskReport.json(options, seconds, results);
    if (report.isPresent()) {
      TaskReport.write(io, report.get(), json);
    }
    if (line.flag("json")) {
      out.println(json);
      return Main.EXIT_OK;
    }
    out.println("model   " + archive.location() + " (" + modelType + "), window " + maxLength + " tokens");
    TextTable table = new TextTable("task", "format", "documents", "acc", "acc_norm");
    for (TaskResult result : results) {
      table.row(
          result.task().name(),
          result.task().format().id(),
          TextTable.count(result.task().documents().size()),
          format(result.accuracy()),
          result.normalizedAccuracy().map(TaskEvalCommand::format).orElse("-"));
    }
    table.print(out);
    out.printf(Locale.ROOT, "time    %.1f s, %d partitions%s%n", seconds, options.partitions(), report.map(r -> "; report " + r).orElse(""));
    return Main.EXIT_OK;
  }

  private static List<String> taskFiles(String value) {
    List<String> files = new ArrayList<>();
    for (String file : value.split(",")) {
      ValidationException.check(!file.isBlank(), "Invalid --tasks: %s (a comma-separated list of JSONL files)", value);
      files.add(file.trim());
    }
    return files;
  }

  /** "0.4350 ± 0.0351", or "± N/A" for a single document. */
  private static String format(Accuracy accuracy) {
    String stderr = Double.isNaN(accuracy.stderr()) ? "N/A" : String.format(Locale.ROOT, "%.4f", accuracy.stderr());
    return String.format(Locale.ROOT, "%.4f ± %s", accuracy.mean(), stderr);
  }
}
