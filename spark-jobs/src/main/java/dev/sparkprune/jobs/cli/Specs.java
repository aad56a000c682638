package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.prune.PruneKeys;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgGroupSpec;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine.ParameterException;

/**
 * Building picocli specs for the commands, and turning picocli's parse errors into the CLI's
 * one-line messages ("Unknown option for 'inspect': --jsn"). Values are declared as text: the
 * commands convert them, so every bad value gets the same "Invalid --key value: reason".
 */
final class Specs {
  static final String ROOT = "sparkprune";

  /** Help width: the README's usage block is this output, verbatim. */
  static final int WIDTH = 100;

  private Specs() {}

  /** A command's spec with its one-line description and {@code -h/--help}. */
  static CommandSpec command(Subcommand command, String name, String description) {
    CommandSpec spec = CommandSpec.wrapWithoutInspection(command);
    spec.name(name);
    spec.usageMessage().description(description).width(WIDTH).sortOptions(false).abbreviateSynopsis(false);
    spec.addOption(OptionSpec.builder("-h", "--help").usageHelp(true).description("Show this help.").build());
    return spec;
  }

  /** An optional {@code --name LABEL}; the description ends with its default when it has one. */
  static OptionSpec option(String name, String label, String description) {
    return OptionSpec.builder("--" + name).paramLabel(label).type(String.class).description(description).build();
  }

  static OptionSpec required(String name, String label, String description) {
    return OptionSpec.builder("--" + name).paramLabel(label).type(String.class).required(true).description(description).build();
  }

  static OptionSpec flag(String name, String description) {
    return OptionSpec.builder("--" + name).type(boolean.class).arity("0").description(description).build();
  }

  /** The option of a job setting, with its label, help and default from the key holder. */
  static OptionSpec key(OptionKey key) {
    switch (key.kind()) {
      case FLAG:
        return flag(key.name(), key.help());
      case REQUIRED:
        return required(key.name(), key.label(), key.help());
      default:
        return option(key.name(), key.label(), key.help());
    }
  }

  /**
   * Declares job settings as options, with their help and defaults from the key holder;
   * --sparsity/--pattern and --save-stats/--stats are exclusive pairs. A command sharing keys
   * with prune (e.g. {@link PruneKeys#COMMON}) calls this with its list; the synopsis
   * names the required keys.
   */
  static void keys(CommandSpec spec, List<OptionKey> keys) {
    for (OptionKey key : keys) {
      if (key.equals(PruneKeys.SPARSITY) && keys.contains(PruneKeys.PATTERN)) {
        exclusive(spec, false, key(PruneKeys.SPARSITY), key(PruneKeys.PATTERN));
      } else if (key.equals(PruneKeys.SAVE_STATS) && keys.contains(PruneKeys.STATS)) {
        exclusive(spec, false, key(PruneKeys.SAVE_STATS), key(PruneKeys.STATS));
      } else if (!(key.equals(PruneKeys.PATTERN) && keys.contains(PruneKeys.SPARSITY))
          && !(key.equals(PruneKeys.STATS) && keys.contains(PruneKeys.SAVE_STATS))) {
        spec.addOption(key(key));
      }
    }
    synopsis(spec, keys);
  }

  /** "sparkprune prune --model URI ... [OPTIONS]": the required keys, then the rest; the options list has them all. */
  private static void synopsis(CommandSpec spec, List<OptionKey> keys) {
    StringBuilder synopsis = new StringBuilder(ROOT).append(' ').append(spec.name());
    for (OptionKey key : keys) {
      if (key.kind() == OptionKey.Kind.REQUIRED) {
        synopsis.append(' ').append(key.option()).append(' ').append(key.label());
      }
    }
    spec.usageMessage().customSynopsis(synopsis.append(" [OPTIONS]").toString());
  }

  /** The Spark master of the commands that start a session. */
  static OptionSpec master() {
    return option("master", "URL", "Spark master. Default: local[*] in this JVM.");
  }

  /** Options of which at most one (or, if {@code required}, exactly one) may be given. */
  static void exclusive(CommandSpec spec, boolean required, OptionSpec... options) {
    ArgGroupSpec.Builder group = ArgGroupSpec.builder().exclusive(true).multiplicity(required ? "1" : "0..1");
    for (OptionSpec option : options) {
      group.addArg(option);
    }
    spec.addArgGroup(group.build());
  }

  static void positional(CommandSpec spec, String label, String description) {
    spec.addPositional(
        PositionalParamSpec.builder().paramLabel(label).type(String.class).arity("1").required(true).description(description).build());
  }

  /** The command as typed, without the program name: {@code bench wanda}. */
  static String commandName(CommandSpec spec) {
    List<String> names = new ArrayList<>();
    for (CommandSpec at = spec; at.parent() != null; at = at.parent()) {
      names.add(0, at.name());
    }
    return names.isEmpty() ? ROOT : String.join(" ", names);
  }

  /** One line for a parse error, in the CLI's wording. */
  static String message(ParameterException error) {
    CommandSpec spec = error.getCommandLine().getCommandSpec();
    String command = commandName(spec);
    if (error instanceof CommandLine.UnmatchedArgumentException unmatched) {
      List<String> arguments = unmatched.getUnmatched();
      List<String> options = arguments.stream().filter(argument -> argument.startsWith("-")).map(Specs::optionName).toList();
      if (!options.isEmpty()) {
        return String.format("Unknown option%s for '%s': %s (run 'sparkprune %s--help')", options.size() == 1 ? "" : "s", command,
            String.join(", ", options), spec.parent() == null ? "" : command + " ");
      }
      if (!spec.subcommands().isEmpty()) {
        return String.format("Unknown %s '%s' (%s)", spec.parent() == null ? "command" : "benchmark", arguments.get(0),
            String.join(", ", spec.subcommands().keySet()));
      }
      return String.format("%s for '%s': %s", spec.positionalParameters().isEmpty() ? "Unexpected arguments" : "Too many arguments",
          command, String.join(" ", arguments));
    }
    if (error instanceof CommandLine.MissingParameterException missing) {
      List<String> names = missing.getMissing().stream().map(Specs::displayName).toList();
      if (error.getMessage().startsWith("Expected parameter") || error.getMessage().contains("parameter for option")) {
        return String.format("Invalid option %s for '%s': it needs a value", names.get(0), command);
      }
      // The options of one exclusive group are alternatives; otherwise each is missing.
      boolean alternatives = missing.getMissing().stream().allMatch(arg -> arg.group() != null && arg.group().exclusive());
      return String.format("Missing %s for '%s'", String.join(alternatives ? " or " : ", ", names), command);
    }
    if (error instanceof CommandLine.OverwrittenOptionException overwritten) {
      return String.format("Invalid options for '%s': %s given twice", command, displayName(overwritten.getOverwritten()));
    }
    if (error instanceof CommandLine.MutuallyExclusiveArgsException) {
      List<String> names = new ArrayList<>();
      Matcher matcher = Pattern.compile("--[a-z0-9-]+").matcher(error.getMessage());
      while (matcher.find()) {
        names.add(matcher.group());
      }
      return String.format("Give either %s, not both (in '%s')", String.join(" or ", names), command);
    }
    return String.format("Invalid arguments for '%s': %s", command, error.getMessage().replaceFirst("^Error: ", ""));
  }

  private static String optionName(String argument) {
    int equals = argument.indexOf('=');
    return equals < 0 ? argument : argument.substring(0, equals);
  }

  private static String displayName(ArgSpec arg) {
    return arg instanceof OptionSpec option ? option.longestName() : arg.paramLabel();
  }
}
