package dev.sparkprune.jobs.cli;

import dev.sparkprune.tensorio.ValidationException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * Parsed arguments of one subcommand: positionals, {@code --key value} options and flags. Every
 * option must be declared by the command; unknown ones are listed in the error, never ignored.
 */
final class CommandLine {
  private final String command;
  private final List<String> positionals;
  private final Map<String, String> values;
  private final Set<String> flags;

  private CommandLine(String command, List<String> positionals, Map<String, String> values, Set<String> flags) {
    this.command = command;
    this.positionals = positionals;
    this.values = values;
    this.flags = flags;
  }

  static CommandLine parse(String command, List<String> args, Set<String> valueOptions, Set<String> flagOptions) {
    List<String> positionals = new ArrayList<>();
    Map<String, String> values = new LinkedHashMap<>();
    Set<String> flags = new TreeSet<>();
    Set<String> unknown = new TreeSet<>();
    for (int i = 0; i < args.size(); i++) {
      String arg = args.get(i);
      if (!arg.startsWith("--")) {
        positionals.add(arg);
        continue;
      }
      String name = arg.substring(2);
      String inlineValue = null;
      int equals = name.indexOf('=');
      if (equals >= 0) {
        inlineValue = name.substring(equals + 1);
        name = name.substring(0, equals);
      }
      if (flagOptions.contains(name) && inlineValue == null) {
        flags.add(name);
      } else if (valueOptions.contains(name)) {
        String value = inlineValue;
        if (value == null) {
          ValidationException.check(i + 1 < args.size(), "Invalid option --%s for '%s': it needs a value", name, command);
          value = args.get(++i);
        }
        ValidationException.check(
            values.put(name, value) == null, "Invalid options for '%s': --%s given twice", command, name);
      } else {
        unknown.add("--" + name);
      }
    }
    ValidationException.check(
        unknown.isEmpty(),
        "Unknown option%s for '%s': %s (run 'sparkprune help')",
        unknown.size() == 1 ? "" : "s",
        command,
        String.join(", ", unknown));
    return new CommandLine(command, positionals, values, flags);
  }

  List<String> positionals() {
    return positionals;
  }

  /** The single positional argument the command takes, e.g. the archive URI. */
  String requirePositional(String what) {
    ValidationException.check(!positionals.isEmpty(), "Missing %s for '%s'", what, command);
    ValidationException.check(
        positionals.size() == 1, "Too many arguments for '%s': %s (expected one %s)", command, positionals, what);
    return positionals.get(0);
  }

  void requireNoPositionals() {
    ValidationException.check(positionals.isEmpty(), "Unexpected arguments for '%s': %s", command, positionals);
  }

  Optional<String> value(String option) {
    return Optional.ofNullable(values.get(option));
  }

  /** A required {@code --option value}. */
  String require(String option) {
    String value = values.get(option);
    ValidationException.check(value != null, "Missing --%s for '%s'", option, command);
    return value;
  }

  /** An optional positive integer option with its default. */
  int positiveInt(String option, int defaultValue) {
    String text = values.get(option);
    if (text == null) {
      return defaultValue;
    }
    try {
      int value = Integer.parseInt(text.trim());
      ValidationException.check(value > 0, "Invalid --%s: %s (must be a positive integer)", option, text);
      return value;
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid --" + option + ": " + text + " (must be a positive integer)");
    }
  }

  boolean flag(String option) {
    return flags.contains(option);
  }
}
