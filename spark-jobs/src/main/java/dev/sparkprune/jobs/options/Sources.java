package dev.sparkprune.jobs.options;

/**
 * Where each key's value came from, as messages name it: the option ({@code --min-keep}) or the
 * conf key ({@code spark.sparkprune.min-keep}). Checks of resolved settings take one, so a bad
 * combination names what the user actually set.
 */
@FunctionalInterface
public interface Sources {
  /** Values given on the command line, or made in code: each named by its option. */
  Sources OPTIONS = OptionKey::option;

  /** How messages name {@code key}'s value. */
  String of(OptionKey<?> key);
}
