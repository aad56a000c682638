package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.text.TextSource;
import dev.sparkprune.jobs.text.TextTokens;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.model.Perplexity;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;

/**
 * {@code sparkprune eval}: perplexity of a model archive on a text, with the pruning papers'
 * protocol (documents joined with a blank line, tokenized once, non-overlapping windows).
 */
final class EvalCommand {
  private EvalCommand() {}

  static int run(List<String> args, PrintStream out) throws IOException {
    if (TaskEvalCommand.requested(args)) {
      return TaskEvalCommand.run(args, out);
    }
    CommandLine line = CommandLine.parse("eval", args, Set.of("model", "text", "seqlen", "max-windows", "batch"), Set.of());
    line.requireNoPositionals();
    String modelLocation = line.require("model");
    String textLocation = line.require("text");
    int seqlen = line.positiveInt("seqlen", 2048);
    int maxWindows = line.positiveInt("max-windows", Integer.MAX_VALUE);
    int batch = line.positiveInt("batch", 4);

    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ModelArchive archive = ModelArchive.open(io, modelLocation);
    // Everything that config.json and tokenizer.json can refute is checked before the text is read.
    int maxPositions = Models.maxPositions(archive.config(), Architectures.layout(archive).modelType());
    ValidationException.check(seqlen <= maxPositions, "Invalid --seqlen %d: the model supports at most %d positions", seqlen, maxPositions);
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    Models.checkTokenizer(archive, tokenizer);
    long start = System.nanoTime();
    // With --max-windows only the text those windows need is read and tokenized.
    long needed = maxWindows == Integer.MAX_VALUE ? Long.MAX_VALUE : (long) maxWindows * seqlen;
    if (needed == Long.MAX_VALUE) {
      TextSource.check(io, textLocation);
    }
    TextTokens.Corpus corpus = TextTokens.tokenize(io, textLocation, tokenizer, needed);
    try (DecoderModel model = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      Perplexity result = Perplexity.evaluate(model, corpus.ids(), seqlen, maxWindows, batch);
      double seconds = (System.nanoTime() - start) / 1e9;
      out.println("model       " + archive.location() + " (" + model.layout().modelType() + ")");
      out.println("text        " + textLocation + " (" + (corpus.complete() ? "" : "read as far as needed: ") + "documents: "
          + corpus.documents() + ", tokens: " + TextTable.count(corpus.ids().length) + ")");
      out.printf(Locale.ROOT, "evaluated   %s tokens in %d windows of %d%n", TextTable.count(result.tokens()), result.windows(), seqlen);
      out.printf(Locale.ROOT, "perplexity  %.4f (mean NLL %.6f)%n", result.perplexity(), result.meanNll());
      out.printf(Locale.ROOT, "time        %.1f s (%.0f tokens/s)%n", seconds, result.tokens() / seconds);
    }
    return Main.EXIT_OK;
  }
}
