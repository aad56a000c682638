package dev.sparkprune.jobs.cli;

import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.tensorio.ValidationException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.ParseResult;

/**
 * The parsed arguments of one command. picocli has already refused unknown, repeated and
 * missing options; values stay text here and are converted with the project's one-line messages.
 */
final class Arguments {
  private final ParseResult result;

  Arguments(ParseResult result) {
    this.result = result;
  }

  /** The command as a user types it, e.g. {@code bench wanda}. */
  String command() {
    return Specs.commandName(result.commandSpec());
  }

  List<String> positionals() {
    return result.matchedPositionals().stream().flatMap(spec -> spec.stringValues().stream()).toList();
  }

  Optional<String> value(String option) {
    return Optional.ofNullable(result.matchedOptionValue("--" + option, (String) null));
  }

  /** A required {@code --option value} (picocli checks required options; this keeps a message for the others). */
  String require(String option) {
    return value(option).orElseThrow(() -> new ValidationException("Missing --" + option + " for '" + command() + "'"));
  }

  /** An optional positive integer option with its default. */
  int positiveInt(String option, int defaultValue) {
    Optional<String> text = value(option);
    if (text.isEmpty()) {
      return defaultValue;
    }
    try {
      int value = Integer.parseInt(text.get().trim());
      ValidationException.check(value > 0, "Invalid --%s %s: must be a positive integer", option, text.get());
      return value;
    } catch (NumberFormatException e) {
      throw new ValidationException("Invalid --" + option + " " + text.get() + ": must be a positive integer");
    }
  }

  boolean flag(String option) {
    return has(option);
  }

  /** Whether the option was given, flag or value. */
  boolean has(String option) {
    return result.hasMatchedOption("--" + option);
  }

  /** The keys given on the command line, as text, for a command's resolver (a flag is "true"). */
  Map<String, String> given(List<OptionKey<?>> keys) {
    Map<String, String> given = new LinkedHashMap<>();
    for (OptionKey<?> key : keys) {
      if (result.hasMatchedOption(key.option())) {
        given.put(key.name(), key.kind() == OptionKey.Kind.FLAG ? "true" : result.matchedOptionValue(key.option(), ""));
      }
    }
    return given;
  }
}
