package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.prune.ValidationFailureLogs;
import dev.sparkprune.tensorio.ValidationException;
import java.io.FileNotFoundException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.fs.FSError;

/**
 * The {@code sparkprune} command. Exit codes: 0 success, 1 internal failure, 2 bad input (a
 * one-line message; the stack trace only with {@code --verbose}).
 */
public final class Main {
  static final int EXIT_OK = 0;
  static final int EXIT_FAILURE = 1;
  static final int EXIT_BAD_INPUT = 2;
  static final String DISK_FULL = "Cannot write the output: no space left on device; free some space or choose another --out";

  private static final String USAGE =
      String.join(
          "\n",
          "Usage: sparkprune <command> [options]",
          "",
          "Commands:",
          "  prune --model URI --out URI --method wanda|sparsegpt|magnitude|ria",
          "        [--sparsity 0.5 | --pattern 2:4] [--calib URI] [--nsamples 128] [--seqlen 2048]",
          "        [--seed 0] [--mode sequential|one-shot] [--save-stats | --stats URI]",
          "        [--allocation uniform|global|lamp|owl] [--min-keep 0.01] [--owl-lambda 0.08] [--owl-m 5]",
          "        [--group row|layer] [--config rules.yaml]",
          "        [--refine dsnot] [--dsnot-cycles 50] [--dsnot-threshold 0.1] [--dsnot-var-power 1] [--dsnot-skip REGEX|none]",
          "        [--update admm|admm-gradual] [--admm-iterations 20] [--admm-percdamp 0.1] [--admm-rho 1]",
          "        [--admm-gradual-steps 15]",
          "        [--partitions N] [--master URL] [--overwrite]",
          "        [--gpus-per-task A] [--gpus-per-executor N] [--gpu-discovery-script PATH] [--gpu-vendor V]",
          "                                   Prune every linear; masks as Parquet, a pruned archive, report.json.",
          "                                   An existing --out is replaced only if it is a sparkprune output",
          "                                   (or with --overwrite); never one that is, holds or lies in an input.",
          "  shrink --model URI --out URI --calib URI [--nsamples 128] [--seqlen 2048] [--seed 0]",
          "        [--drop-layers N | --drop-layers-fraction F] [--layer-metric angular|block-influence]",
          "        [--mlp-keep F] [--heads-keep F] [--width-metric activation|weight-norm]",
          "        [--experts-keep F] [--expert-metric reap|frequency]",
          "        [--then-prune wanda|sparsegpt [--sparsity S | --pattern N:M]] [--partitions N] [--master URL] [--overwrite]",
          "                                   Remove whole blocks, MLP channels, KV head groups and experts: a smaller",
          "                                   standard archive in model/, with report.json (what was removed and why).",
          "  batch --manifest URI --out-root URI [--master URL]",
          "                                   Prune every model of a manifest; Parquet status table in _status.",
          "  inspect <archive-uri> [--json]   Describe a model archive from its headers: architecture,",
          "                                   blocks, prunable linears, parameters, dtypes, shards.",
          "  eval --model URI --text URI [--seqlen 2048] [--max-windows K] [--batch 4]",
          "                                   Perplexity on a text (plain, JSONL or Parquet 'text').",
          "  eval --model URI --tasks a.jsonl[,b.jsonl] [--task-format F] [--max-length N] [--partitions N]",
          "       [--pass-size 64] [--master URL] [--report URI] [--json]",
          "                                   Zero-shot multiple-choice accuracy as lm-evaluation-harness scores it",
          "                                   (HellaSwag, PIQA, ARC, WinoGrande, BoolQ, OpenBookQA, RTE, generic JSONL).",
          "  demo [--out DIR] [--shared DIR]  Prune with Wanda and SparseGPT and compare perplexity: stories260K",
          "                                   from ../shared when present, else a generated model and text.",
          "  bench read [--size-mb N] [--passes N] [--dir DIR]",
          "                                   Benchmark reading and decoding a generated BF16 shard.",
          "  bench wanda|sparsegpt|admm|dsnot|hessian|sgemm|forward [--rounds N] [--threads N] [--java-blas]",
          "                                   Benchmark the kernels at reference sizes.",
          "  bench tokenize --tokenizer DIR --text FILE[,FILE] [--chars N] [--rounds N]",
          "                                   Tokens per second of a tokenizer.json on a text.",
          "  help                             Show this message.",
          "",
          "Archive URIs are local paths or Hadoop URIs (file://, hdfs://, s3a://).",
          "Global options: --verbose (stack traces on errors), --version.");

  private Main() {}

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /** Runs a command and returns its exit code; never calls System.exit, so tests can call it. */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    List<String> rest = new ArrayList<>(Arrays.asList(args));
    boolean verbose = rest.remove("--verbose");
    ValidationFailureLogs.configure(verbose);
    try {
      if (rest.isEmpty() || rest.get(0).equals("help") || rest.get(0).equals("--help") || rest.get(0).equals("-h")) {
        out.println(USAGE);
        return rest.isEmpty() ? EXIT_BAD_INPUT : EXIT_OK;
      }
      if (rest.get(0).equals("--version")) {
        out.println("sparkprune " + version());
        return EXIT_OK;
      }
      String command = rest.remove(0);
      switch (command) {
        case "inspect":
          return InspectCommand.run(rest, out);
        case "demo":
          return DemoCommand.run(rest, out);
        case "prune":
          return PruneCommand.run(rest, out);
        case "eval":
          return EvalCommand.run(rest, out);
        case "batch":
          return BatchCommand.run(rest, out);
        case "shrink":
          return ShrinkCommand.run(rest, out);
        case "bench":
          return BenchCommand.run(rest, out);
        default:
          throw new ValidationException("Unknown command '" + command + "' (commands: prune, shrink, batch, inspect, eval, demo, bench, help)");
      }
    } catch (ValidationException | IllegalArgumentException e) {
      return fail(err, e, e.getMessage(), EXIT_BAD_INPUT, verbose);
    } catch (FileNotFoundException e) {
      return fail(err, e, "File not found: " + e.getMessage(), EXIT_BAD_INPUT, verbose);
    } catch (FSError e) {
      // Hadoop's local file system reports a failed write, such as a full disk, as an Error.
      if (ValidationFailureLogs.isDiskFull(e)) {
        return fail(err, e, DISK_FULL, EXIT_BAD_INPUT, verbose);
      }
      throw e;
    } catch (Exception e) {
      if (ValidationFailureLogs.isDiskFull(e)) {
        return fail(err, e, DISK_FULL, EXIT_BAD_INPUT, verbose);
      }
      if (e instanceof UncheckedIOException) {
        return fail(err, e, e.getMessage() + ": " + e.getCause().getMessage(), EXIT_FAILURE, verbose);
      }
      // Bad input found inside a Spark task arrives wrapped in a SparkException.
      for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) {
        if (cause instanceof ValidationException) {
          return fail(err, e, cause.getMessage(), EXIT_BAD_INPUT, verbose);
        }
      }
      return fail(err, e, e.getClass().getSimpleName() + ": " + firstLine(e.getMessage()), EXIT_FAILURE, verbose);
    }
  }

  private static int fail(PrintStream err, Throwable error, String message, int code, boolean verbose) {
    err.println("sparkprune: error: " + message.replace('\n', ' '));
    if (verbose) {
      error.printStackTrace(err);
    } else if (code == EXIT_FAILURE) {
      err.println("sparkprune: run again with --verbose for the stack trace");
    }
    return code;
  }

  private static String firstLine(String message) {
    return message == null ? "" : message.lines().findFirst().orElse("");
  }

  static String version() {
    String version = Main.class.getPackage().getImplementationVersion();
    return version == null ? "dev" : version;
  }
}
