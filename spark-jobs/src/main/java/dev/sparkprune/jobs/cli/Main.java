package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.spark.ValidationFailureLogs;
import dev.sparkprune.tensorio.ValidationException;
import java.io.FileNotFoundException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.fs.FSError;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

/**
 * The {@code sparkprune} command. Exit codes: 0 success, 1 internal failure, 2 bad input (a
 * one-line message; the stack trace only with {@code --verbose}).
 */
public final class Main {
  static final int EXIT_OK = 0;
  static final int EXIT_FAILURE = 1;
  static final int EXIT_BAD_INPUT = 2;
  static final String DISK_FULL = "Cannot write the output: no space left on device; free some space or choose another --out";

  private Main() {}

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /** Runs a command and returns its exit code; never calls System.exit, so tests can call it. */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    List<String> rest = new ArrayList<>(Arrays.asList(args));
    // --verbose is accepted anywhere, as before the parser knew the commands.
    boolean verbose = rest.removeIf(arg -> arg.equals("--verbose"));
    ValidationFailureLogs.configure(verbose);
    CommandLine root = commandLine();
    try {
      if (rest.isEmpty()) {
        out.print(root.getUsageMessage());
        return EXIT_BAD_INPUT;
      }
      ParseResult parsed = root.parseArgs(rest.toArray(String[]::new));
      if (parsed.isVersionHelpRequested()) {
        out.println("sparkprune " + version());
        return EXIT_OK;
      }
      // The deepest command given runs (bench wanda, not bench); --help at any level prints that level's help.
      for (ParseResult at = parsed; ; at = at.subcommand()) {
        if (at.isUsageHelpRequested()) {
          out.print(at.commandSpec().commandLine().getUsageMessage());
          return EXIT_OK;
        }
        if (!at.hasSubcommand()) {
          if (at == parsed) {
            out.print(root.getUsageMessage());
            return EXIT_OK;
          }
          return ((Subcommand) at.commandSpec().userObject()).run(new Arguments(at), out);
        }
      }
    } catch (ParameterException e) {
      return fail(err, e, Specs.message(e, rest), EXIT_BAD_INPUT, verbose);
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

  /**
   * The whole command line: every command with its options. The help it prints is the CLI's
   * documentation (the README's usage block is this output), so it cannot drift from the parser.
   */
  static CommandLine commandLine() {
    CommandSpec spec = CommandSpec.create().name(Specs.ROOT);
    spec.usageMessage()
        .description("Distributed pruning of LLM weights on Apache Spark.")
        .width(Specs.WIDTH)
        .footer("", "Archive URIs are local paths or Hadoop URIs (file://, hdfs://, s3a://).",
            "Run 'sparkprune COMMAND --help' for a command's options.");
    spec.addOption(OptionSpec.builder("-h", "--help").usageHelp(true).description("Show this help.").build());
    spec.addOption(OptionSpec.builder("--version").versionHelp(true).description("Print the version.").build());
    spec.addOption(Specs.flag("verbose", "Stack traces on errors (any position)."));
    CommandLine root = new CommandLine(spec);
    root.setExpandAtFiles(false);
    HelpCommand help = new HelpCommand(root);
    for (Subcommand command : List.of(new PruneCommand(), new ShrinkCommand(), new BatchCommand(), new InspectCommand(), new EvalCommand(),
        new DemoCommand(), new BenchCommand(), help)) {
      root.addSubcommand(command.spec().name(), new CommandLine(command.spec()));
    }
    return root;
  }

  static String version() {
    String version = Main.class.getPackage().getImplementationVersion();
    return version == null ? "dev" : version;
  }
}
