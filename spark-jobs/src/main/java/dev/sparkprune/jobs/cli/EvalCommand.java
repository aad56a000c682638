package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.calibration.SparkExecutors;
import dev.sparkprune.jobs.eval.PerplexityJob;
import dev.sparkprune.jobs.options.Locations;
import dev.sparkprune.jobs.plan.ExecutorShape;
import dev.sparkprune.jobs.plan.RunPlan;
import dev.sparkprune.jobs.spark.SparkSessions;
import dev.sparkprune.jobs.text.TextSource;
import dev.sparkprune.jobs.text.TextTokens;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.model.Perplexity;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import org.apache.hadoop.conf.Configuration;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * {@code sparkprune eval}: perplexity of a model archive on a text, with the pruning papers'
 * protocol (documents joined with a blank line, tokenized once, non-overlapping windows).
 */
final class EvalCommand implements Subcommand {
  /** Options of perplexity (--text) only; the others but --model are task evaluation's (--tasks). */
  private static final List<String> PERPLEXITY_OPTIONS = List.of("seqlen", "max-windows", "batch", "expert-task-mb");

  static final int SEQLEN_DEFAULT = 2048;
  static final int BATCH_DEFAULT = 4;

  private final CommandSpec spec;

  EvalCommand() {
    spec = Specs.command(this, "eval", "Perplexity on a text (--text), or zero-shot multiple-choice accuracy as "
        + "lm-evaluation-harness scores it (--tasks: HellaSwag, PIQA, ARC, WinoGrande, BoolQ, OpenBookQA, RTE, generic JSONL).");
    spec.addOption(Specs.required("model", "URI", "The model archive."));
    Specs.exclusive(spec, true,
        Specs.option("text", "URI", "Perplexity on this text (plain, JSONL or Parquet 'text')."),
        Specs.option("tasks", "FILES", "Accuracy on these comma-separated task files (JSONL)."));
    spec.addOption(Specs.option("seqlen", "N", "--text: tokens per window. Default: " + SEQLEN_DEFAULT + "."));
    spec.addOption(Specs.option("max-windows", "K", "--text: evaluate at most K windows. Default: all."));
    spec.addOption(Specs.option("batch", "N", "--text: windows per forward pass. Default: " + BATCH_DEFAULT + "."));
    spec.addOption(Specs.option("expert-task-mb", "MB", "--text: run on Spark (spark.master, else local[*]), MoE blocks whose routed "
        + "experts exceed MB per task expert-parallel; the same perplexity. Default: in this process, whole blocks."));
    TaskEvalCommand.addOptions(spec);
  }

  @Override
  public CommandSpec spec() {
    return spec;
  }

  @Override
  public int run(Arguments line, PrintStream out) throws IOException {
    boolean tasks = line.value("tasks").isPresent();
    for (OptionSpec option : spec.options()) {
      String name = option.longestName().substring(2);
      boolean perplexityOnly = PERPLEXITY_OPTIONS.contains(name);
      boolean tasksOnly = TaskEvalCommand.OPTIONS.contains(name);
      ValidationException.check(!line.has(name) || !(tasks ? perplexityOnly : tasksOnly),
          "Invalid option --%s for 'eval %s': it applies to 'eval %s' only", name, tasks ? "--tasks" : "--text", tasks ? "--text" : "--tasks");
    }
    if (tasks) {
      return TaskEvalCommand.run(line, out);
    }
    String modelLocation = line.require("model");
    String textLocation = line.require("text");
    int seqlen = line.positiveInt("seqlen", SEQLEN_DEFAULT);
    ValidationException.check(seqlen >= 2, "Invalid --seqlen %d: need at least 2 tokens per window", seqlen);
    int maxWindows = line.positiveInt("max-windows", Integer.MAX_VALUE);
    int batch = line.positiveInt("batch", BATCH_DEFAULT);

    boolean onSpark = line.has("expert-task-mb");
    long expertTaskBytes = onSpark ? (long) line.positiveInt("expert-task-mb", 1) << 20 : 0;

    HadoopFileIO io = new HadoopFileIO(new Configuration());
    if (onSpark) {
      // The executors open the archive: a location every one of them resolves alike.
      ConfKeys.checkKnown(new org.apache.spark.SparkConf());
      modelLocation = Locations.qualify(modelLocation, io.conf());
    }
    ModelArchive archive = ModelArchive.open(io, modelLocation);
    // Everything that config.json and tokenizer.json can refute is checked before the text is read.
    int maxPositions = Models.maxPositions(archive.config(), Architectures.layout(archive).modelType());
    ValidationException.check(seqlen <= maxPositions, "Invalid --seqlen %d: the model supports at most %d positions", seqlen, maxPositions);
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    Models.checkTokenizer(archive, tokenizer);
    if (!onSpark) {
      // The run plan before the text is read: the forward runs here, a block at a time, in this JVM's heap.
      // (On Spark, with --expert-task-mb, the expert plan shards the blocks too large for a task.)
      ExecutorShape jvm = new ExecutorShape(Runtime.getRuntime().maxMemory(), 1, 1, "SPARKPRUNE_HEAP",
          "eval runs in this JVM, whose heap is set by -Xmx or SPARKPRUNE_HEAP");
      ModelLayout layout = Architectures.layout(archive);
      RunPlan.evaluate("Cannot evaluate " + archive.location(), jvm, RunPlan.evaluation(archive, layout, batch, seqlen)).checkFits();
    }
    long start = System.nanoTime();
    // With --max-windows only the text those windows need is read and tokenized.
    long needed = maxWindows == Integer.MAX_VALUE ? Long.MAX_VALUE : (long) maxWindows * seqlen;
    if (needed == Long.MAX_VALUE) {
      TextSource.check(io, textLocation);
    }
    TextTokens.Corpus corpus = TextTokens.tokenize(io, textLocation, tokenizer, needed);
    if (onSpark) {
      // Too short a text, or an expert task over a task's heap, fails here, before Spark starts.
      org.apache.spark.SparkConf sparkConf = new org.apache.spark.SparkConf();
      ExecutorShape executors = SparkExecutors.of(null, sparkConf);
      PerplexityJob.expertPlan(archive, Perplexity.batches(corpus.ids(), seqlen, maxWindows, batch), seqlen, expertTaskBytes, executors,
          SparkExecutors.defaultParallelism(executors, sparkConf)).checkFits();
      PerplexityJob.Result result = PerplexityJob.run(SparkSessions.getOrCreate(null), archive, corpus.ids(), seqlen, maxWindows, batch,
          expertTaskBytes, 0);
      out.println("expert-parallel blocks " + result.expertParallelBlocks() + " (--expert-task-mb " + (expertTaskBytes >> 20) + ")");
      print(out, archive, Architectures.layout(archive).modelType(), textLocation, corpus, result.perplexity(), seqlen, start);
      return Main.EXIT_OK;
    }
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      Perplexity result = Perplexity.evaluate(model, corpus.ids(), seqlen, maxWindows, batch);
      print(out, archive, model.layout().modelType(), textLocation, corpus, result, seqlen, start);
    }
    return Main.EXIT_OK;
  }

  private static void print(PrintStream out, ModelArchive archive, String modelType, String textLocation, TextTokens.Corpus corpus,
      Perplexity result, int seqlen, long start) {
    double seconds = (System.nanoTime() - start) / 1e9;
    out.println("model       " + archive.location() + " (" + modelType + ")");
    out.println("text        " + textLocation + " (" + (corpus.complete() ? "" : "read as far as needed: ") + "documents: "
        + corpus.documents() + ", tokens: " + TextTable.count(corpus.ids().length) + ")");
    out.printf(Locale.ROOT, "evaluated   %s tokens in %d windows of %d%n", TextTable.count(result.tokens()), result.windows(), seqlen);
    out.printf(Locale.ROOT, "perplexity  %.4f (mean NLL %.6f)%n", result.perplexity(), result.meanNll());
    out.printf(Locale.ROOT, "time        %.1f s (%.0f tokens/s)%n", seconds, result.tokens() / seconds);
  }
}
