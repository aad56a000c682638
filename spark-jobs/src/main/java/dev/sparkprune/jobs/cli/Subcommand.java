package dev.sparkprune.jobs.cli;

import java.io.PrintStream;
import picocli.CommandLine.Model.CommandSpec;

/**
 * One {@code sparkprune} command: its picocli spec (name, options, help) and what it runs. Main
 * parses the whole command line against the specs, so every option is declared, checked and
 * documented in one place; a command with subcommands of its own (bench) lists them in its spec.
 */
interface Subcommand {
  /** The command's spec; its user object is this command. */
  CommandSpec spec();

  /** Runs on parsed arguments and returns the exit code. */
  int run(Arguments arguments, PrintStream out) throws Exception;
}
