package dev.sparkprune.jobs.cli;

import dev.sparkprune.tensorio.ValidationException;
import java.io.PrintStream;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

/** {@code sparkprune help [COMMAND...]}: the generated help of the program or of one command. */
final class HelpCommand implements Subcommand {
  private final CommandLine root;
  private final CommandSpec spec;

  HelpCommand(CommandLine root) {
    this.root = root;
    this.spec = Specs.command(this, "help", "Show the commands, or a command's options.");
    spec.addPositional(PositionalParamSpec.builder().paramLabel("COMMAND").type(String[].class).arity("0..*")
        .description("A command, e.g. prune or bench wanda.").build());
  }

  @Override
  public CommandSpec spec() {
    return spec;
  }

  @Override
  public int run(Arguments arguments, PrintStream out) {
    CommandLine at = root;
    for (String name : arguments.positionals()) {
      CommandLine next = at.getSubcommands().get(name);
      ValidationException.check(next != null, "Unknown command '%s' for 'help' (commands: %s)", name,
          String.join(", ", at.getSubcommands().keySet()));
      at = next;
    }
    out.print(at.getUsageMessage());
    return Main.EXIT_OK;
  }
}
