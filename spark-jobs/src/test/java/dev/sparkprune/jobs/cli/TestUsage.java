package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.prune.PruneKeys;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The generated help and the parser's usage errors; nothing here starts Spark or reads a model. */
class TestUsage {
  private static final Path README = Path.of("..", "README.md");

  private record Result(int code, String out, String err) {}

  private static Result run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  private static void assertUsageError(Result result, String expected) {
    assertThat(result.code()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(result.err()).isEqualTo("sparkprune: error: " + expected + System.lineSeparator());
    assertThat(result.out()).isEmpty();
  }

  /** Each README block marked "generated: sparkprune ARGS" is exactly what that command prints. */
  @Test
  void readmeUsageBlocksAreTheGeneratedHelp() throws IOException {
    String readme = Files.readString(README);
    Matcher block = Pattern.compile("<!-- generated: sparkprune ([^>]*) -->\\n```text\\n(.*?)```", Pattern.DOTALL).matcher(readme);
    int blocks = 0;
    while (block.find()) {
      Result help = run(block.group(1).trim().split(" "));
      assertThat(help.code()).isZero();
      assertThat(block.group(2)).as("README block for 'sparkprune %s'; paste that command's output", block.group(1)).isEqualTo(help.out());
      blocks++;
    }
    assertThat(blocks).as("generated blocks in README.md").isGreaterThanOrEqualTo(3);
  }

  @Test
  void pruneHelpListsEveryKeyWithItsDefault() {
    Result help = run("prune", "--help");
    assertThat(help.code()).isZero();
    for (OptionKey key : PruneKeys.ALL) {
      assertThat(help.out()).contains("--" + key.name());
      if (!key.defaultText().isEmpty()) {
        assertThat(help.out()).contains(key.description() + " Default: " + key.defaultText());
      }
    }
    // The reference implementations' values, as the README states them.
    assertThat(help.out()).contains("Calibration samples. Default: 128").contains("Default: 2048").contains("ADMM iterations. Default: 20");
    assertThat(help.out()).startsWith("Usage: sparkprune prune --model URI --out URI --method M [OPTIONS]");
  }

  @Test
  void everyCommandHasItsOwnHelp() {
    for (String[] command : new String[][] {{"prune"}, {"batch"}, {"inspect"}, {"eval"}, {"demo"}, {"bench"}, {"bench", "read"},
        {"bench", "wanda"}, {"bench", "tokenize"}}) {
      String[] args = java.util.Arrays.copyOf(command, command.length + 1);
      args[command.length] = "--help";
      Result help = run(args);
      assertThat(help.code()).as(String.join(" ", command)).isZero();
      assertThat(help.out()).startsWith("Usage: sparkprune " + String.join(" ", command));
      assertThat(run(("help " + String.join(" ", command)).split(" ")).out()).isEqualTo(help.out());
    }
    assertThat(run("bench", "wanda", "--help").out()).contains("--rounds").contains("--threads").doesNotContain("--size-mb");
    assertThat(run("bench", "read", "--help").out()).contains("--size-mb").doesNotContain("--threads");
  }

  @Test
  void usageErrorsAreOneLineWithExitCodeTwo() {
    assertUsageError(run("bench", "wanda", "--size-mb", "9"), "Unknown option for 'bench wanda': --size-mb (run 'sparkprune bench wanda --help')");
    assertUsageError(run("bench", "sgemm", "--threads", "2"), "Unknown option for 'bench sgemm': --threads (run 'sparkprune bench sgemm --help')");
    assertUsageError(run("bench"), "Missing benchmark for 'bench' (read, wanda, sparsegpt, admm, dsnot, hessian, sgemm, forward, gradients, prune, experts, reference, tokenize)");
    assertUsageError(run("bench", "nope"),
        "Unknown benchmark 'nope' (read, wanda, sparsegpt, admm, dsnot, hessian, sgemm, forward, gradients, prune, experts, reference, tokenize)");
    assertUsageError(run("prune", "--model", "m", "--out", "o", "--method", "magnitude", "--sparsity", "0.5", "--pattern", "2:4"),
        "Give either --sparsity or --pattern, not both (in 'prune')");
    assertUsageError(run("prune", "--model", "m", "--out", "o", "--method", "magnitude", "--save-stats", "--stats", "s"),
        "Give either --save-stats or --stats, not both (in 'prune')");
    assertUsageError(run("prune", "--out", "o"), "Missing --model, --method for 'prune'");
    assertUsageError(run("prune", "--model"), "Invalid option --model for 'prune': it needs a value");
    assertUsageError(run("prune", "--model", "m", "--model", "n", "--out", "o", "--method", "magnitude"),
        "Invalid options for 'prune': --model given twice");
    assertUsageError(run("prune", "--model", "m", "--out", "o", "--method", "magnitude", "extra"), "Unexpected arguments for 'prune': extra");
    assertUsageError(run("prune", "--model", "m", "--out", "o", "--method", "magnitude", "--nsamples", "x"),
        "Invalid --nsamples x: must be a positive integer");
    assertUsageError(run("batch", "--manifest", "m"), "Missing --out-root for 'batch'");
    assertUsageError(run("eval", "--model", "m", "--text", "t", "--tasks", "a.jsonl"), "Give either --text or --tasks, not both (in 'eval')");
    assertUsageError(run("eval", "--model", "m", "--tasks", "a.jsonl", "--seqlen", "64"),
        "Invalid option --seqlen for 'eval --tasks': it applies to 'eval --text' only");
    assertUsageError(run("eval", "--model", "m", "--tasks", "a.jsonl", "--expert-task-mb", "64"),
        "Invalid option --expert-task-mb for 'eval --tasks': it applies to 'eval --text' only");
    assertUsageError(run("eval", "--model", "m", "--text", "t", "--json"), "Invalid option --json for 'eval --text': it applies to 'eval --tasks' only");
    assertUsageError(run("--bogus"), "Unknown option for 'sparkprune': --bogus (run 'sparkprune --help')");
    assertUsageError(run("help", "frobnicate"), "Unknown command 'frobnicate' for 'help' (commands: prune, shrink, batch, inspect, eval, demo, bench, help)");
    // An @file is an argument like any other, never a file of arguments.
    assertUsageError(run("inspect", "@args", "x"), "Too many arguments for 'inspect': x");
  }

  @Test
  void versionAndVerboseAnywhere() {
    Result version = run("--version");
    assertThat(version.code()).isZero();
    assertThat(version.out()).startsWith("sparkprune ");
    Result verbose = run("bench", "wanda", "--verbose", "--size-mb", "9");
    assertThat(verbose.code()).isEqualTo(Main.EXIT_BAD_INPUT);
    assertThat(verbose.err()).startsWith("sparkprune: error: Unknown option for 'bench wanda': --size-mb").contains("\tat ");
  }
}
