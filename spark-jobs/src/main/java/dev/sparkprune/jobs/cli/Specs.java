package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.options.CommonKeys;
import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.prune.PruneKeys;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgGroupSpec;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine.ParameterException;

/**
 * Building picocli specs for the commands, and turning picocli's parse errors into the CLI's
 * one-line messages ("Unknown option for 'inspect': --jsn") from what each exception holds and
 * the arguments typed, never from picocli's own wording. Values are declared as text: the keys
 * convert them in the options layer, so a value gets the same "Invalid --key value: reason"
 * from the command line, a manifest or the Spark conf.
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
  static OptionSpec key(OptionKey<?> key) {
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
   * --sparsity/--pattern and --save-stats/--stats are exclusive pairs. Commands sharing keys
   * ({@link CommonKeys}) declare them alike; the synopsis names the required keys.
   */
  static void keys(CommandSpec spec, List<OptionKey<?>> keys) {
    for (OptionKey<?> key : keys) {
      if (key.equals(CommonKeys.SPARSITY) && keys.contains(CommonKeys.PATTERN)) {
        exclusive(spec, false, key(CommonKeys.SPARSITY), key(CommonKeys.PATTERN));
      } else if (key.equals(PruneKeys.SAVE_STATS) && keys.contains(PruneKeys.STATS)) {
        exclusive(spec, false, key(PruneKeys.SAVE_STATS), key(PruneKeys.STATS));
      } else if (!(key.equals(CommonKeys.PATTERN) && keys.contains(CommonKeys.SPARSITY))
          && !(key.equals(PruneKeys.STATS) && keys.contains(PruneKeys.SAVE_STATS))) {
        spec.addOption(key(key));
      }
    }
    synopsis(spec, keys);
  }

  /** "sparkprune prune --model URI ... [OPTIONS]": the required keys, then the rest; the options list has them all. */
  private static void synopsis(CommandSpec spec, List<OptionKey<?>> keys) {
    StringBuilder synopsis = new StringBuilder(ROOT).append(' ').append(spec.name());
    for (OptionKey<?> key : keys) {
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

  /**
   * One line for a parse error, in the CLI's wording, from the exception's type and contents and
   * the arguments typed ({@code args}, without --verbose).
   */
  static String message(ParameterException error, List<String> args) {
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
      // An option typed without its value, rather than one not typed at all.
      for (ArgSpec arg : missing.getMissing()) {
        if (arg instanceof OptionSpec option && typed(option, args)) {
          return String.format("Invalid option %s for '%s': it needs a value", option.longestName(), command);
        }
      }
      // The options of one exclusive group are alternatives; otherwise each is missing.
      boolean alternatives = missing.getMissing().stream().allMatch(arg -> arg.group() != null && arg.group().exclusive());
      return String.format("Missing %s for '%s'", String.join(alternatives ? " or " : ", ", names), command);
    }
    if (error instanceof CommandLine.OverwrittenOptionException overwritten) {
      return String.format("Invalid options for '%s': %s given twice", command, displayName(overwritten.getOverwritten()));
    }
    if (error instanceof CommandLine.MutuallyExclusiveArgsException) {
      // The command's exclusive group with more than one of its options typed.
      for (ArgGroupSpec group : spec.argGroups()) {
        List<String> names = new ArrayList<>();
        for (OptionSpec option : group.options()) {
          if (typed(option, args)) {
            names.add(option.longestName());
          }
        }
        if (group.exclusive() && names.size() > 1) {
          return String.format("Give either %s, not both (in '%s')", String.join(" or ", names), command);
        }
      }
    }
    return String.format("Invalid arguments for '%s': %s", command, error.getMessage().replaceFirst("^Error: ", ""));
  }

  /** Whether the option was typed, as {@code --name value} or {@code --name=value}. */
  private static boolean typed(OptionSpec option, List<String> args) {
    for (String arg : args) {
      for (String name : option.names()) {
        if (arg.equals(name) || arg.startsWith(name + "=")) {
          return true;
        }
      }
    }
    return false;
  }

  private static String optionName(String argument) {
    int equals = argument.indexOf('=');
    return equals < 0 ? argument : argument.substring(0, equals);
  }

  private static String displayName(ArgSpec arg) {
    return arg instanceof OptionSpec option ? option.longestName() : arg.paramLabel();
  }
}
