package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.prune.PruneJob;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.output.PruneReport;
import dev.sparkprune.jobs.spark.SparkSessions;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.model.Perplexity;
import dev.sparkprune.tensorio.DType;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.synthetic.SyntheticArchive;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import org.apache.hadoop.conf.Configuration;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code sparkprune demo}: the whole product on one machine with no setup. With the shared data
 * beside the checkout it prunes the real stories260K model calibrated on TinyStories; without
 * it, a generated Llama-style archive on generated text. Wanda and SparseGPT at 50%, perplexity
 * before and after, and the outputs left under {@code --out}.
 */
final class DemoCommand implements Subcommand {
  private static final List<String> WORDS = List.of(
      "the", "a", "cat", "dog", "ran", "saw", "big", "small", "tree", "house", "and", "then", "happy", "sad", "bird", "sun",
      "played", "with", "ball", "went", "home", "little", "girl", "boy", "was", "very", "friend", "jumped", "over", "day");

  private final CommandSpec spec;

  DemoCommand() {
    spec = Specs.command(this, "demo", "Prune with Wanda and SparseGPT and compare perplexity: stories260K from ../shared when "
        + "present, else a generated model and text.");
    spec.addOption(Specs.option("out", "DIR", "Where the outputs stay. Default: a new temporary folder."));
    spec.addOption(Specs.option("shared", "DIR", "The shared data folder. Default: $SPARKPRUNE_SHARED or ../shared."));
    spec.addOption(Specs.master());
  }

  @Override
  public CommandSpec spec() {
    return spec;
  }

  @Override
  public int run(Arguments line, PrintStream out) throws IOException {
    Path directory = Path.of(line.value("out").orElseGet(() -> tempDirectory().toString()));
    ValidationException.check(
        !Files.exists(directory.resolve("wanda")), "Cannot run the demo into %s: it already holds a demo output", directory);
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    Path shared = Path.of(line.value("shared").orElse(System.getenv().getOrDefault("SPARKPRUNE_SHARED", "../shared")));
    String model;
    String text;
    if (Files.isDirectory(shared.resolve("data/stories260K")) && Files.isRegularFile(shared.resolve("data/tinystories/tinystories_val_sample.txt"))) {
      model = shared.resolve("data/stories260K").toString();
      text = shared.resolve("data/tinystories/tinystories_val_sample.txt").toString();
      out.println("demo: the pretrained stories260K model, calibrated and evaluated on TinyStories (" + shared + ")");
    } else {
      model = directory.resolve("generated-model").toString();
      text = directory.resolve("generated-text.txt").toString();
      SyntheticArchive.builder(SyntheticArchive.llamaConfig(128, 4, 4, 2, 352, 320)).dtype(DType.BF16).seed(42).build().write(io, model);
      SyntheticArchive.writeByteLevelTokenizer(io, model);
      writeText(io, text, 40_000);
      out.println("demo: no shared data found; a generated Llama-style archive (random weights) on generated text");
    }

    int[] corpus = TokenizerLoader.load(ModelArchive.open(io, model)).encode(Files.readString(Path.of(text)), true);
    double dense = perplexity(io, model, corpus);
    ConfKeys.checkKnown(new org.apache.spark.SparkConf());
    var spark = SparkSessions.getOrCreate(line.value("master").orElse(null));
    StringBuilder summary = new StringBuilder(String.format(Locale.ROOT, "%-22s perplexity %8.3f%n", "dense", dense));
    for (PruningMethod method : List.of(PruningMethod.WANDA, PruningMethod.SPARSEGPT)) {
      String pruned = directory.resolve(method.displayName()).toString();
      PruneOptions options = PruneOptions.builder()
          .model(model).out(pruned).method(method).target(SparsityTarget.unstructured(0.5))
          .calibration(text).nsamples(16).seqlen(128).seed(0).build();
      out.println();
      out.println("sparkprune prune --model " + model + " --out " + pruned + " --method " + method.displayName()
          + " --sparsity 0.5 --calib " + text + " --nsamples 16 --seqlen 128");
      PruneReport report = new PruneJob(spark, options, out).run();
      summary.append(String.format(Locale.ROOT, "%-22s perplexity %8.3f   (%d linears, %,d weights pruned)%n",
          method.displayName() + " 50%", perplexity(io, pruned + "/model", corpus), report.layerCount(), report.prunedParameters()));
    }
    out.println();
    out.println("Perplexity on " + Math.min(16, corpus.length / 256) + " windows of 256 tokens:");
    out.print(summary);
    out.println("Outputs (masks/, model/, report.json) under " + directory);
    return Main.EXIT_OK;
  }

  private static double perplexity(HadoopFileIO io, String model, int[] corpus) throws IOException {
    try (DecoderModel decoder = Models.open(ModelArchive.open(io, model), NetlibLinearAlgebra.defaultInstance())) {
      return Perplexity.evaluate(decoder, corpus, 256, 16, 4).perplexity();
    }
  }

  /** Seeded sentences from a small word list: enough structure for calibration to matter. */
  private static void writeText(HadoopFileIO io, String location, int characters) throws IOException {
    SplittableRandom random = new SplittableRandom(7);
    StringBuilder text = new StringBuilder();
    while (text.length() < characters) {
      int words = 4 + random.nextInt(8);
      for (int i = 0; i < words; i++) {
        String word = WORDS.get(random.nextInt(WORDS.size()));
        text.append(i == 0 ? Character.toUpperCase(word.charAt(0)) + word.substring(1) : word).append(i + 1 < words ? " " : ". ");
      }
      if (random.nextInt(5) == 0) {
        text.append("\n\n");
      }
    }
    try (OutputStream stream = io.newOutputFile(location).create()) {
      stream.write(text.toString().getBytes(StandardCharsets.UTF_8));
    }
  }

  private static Path tempDirectory() {
    try {
      return Files.createTempDirectory("sparkprune-demo-");
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("Cannot create a temporary directory", e);
    }
  }
}
