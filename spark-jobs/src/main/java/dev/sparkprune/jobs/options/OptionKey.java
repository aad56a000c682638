package dev.sparkprune.jobs.options;

import java.util.Objects;

/**
 * One setting of a job: its name (the CLI's long option without dashes, the manifest column and
 * the suffix of its {@code spark.sparkprune.*} conf key), the label and one-line description the
 * help shows, and its default as text ("" when there is none).
 *
 * @param name kebab-case, e.g. {@code min-keep}
 * @param label the value's placeholder in the help, e.g. {@code N}; "" for a flag
 * @param defaultText the default as the help shows it; "" when the key has none
 * @param description one line for the help
 * @param kind whether the key takes a value, is a flag, or must be given
 * @param fromConf whether a cluster may set it as {@code spark.sparkprune.<name>}
 */
public record OptionKey(String name, String label, String defaultText, String description, Kind kind, boolean fromConf) {
  /** How a key is given. */
  public enum Kind {
    /** A value that must be given. */
    REQUIRED,
    /** A value with a default, or none. */
    VALUE,
    /** Present or absent on the command line; true or false in a manifest. */
    FLAG
  }

  public OptionKey {
    Objects.requireNonNull(name, "name is null");
    Objects.requireNonNull(label, "label is null");
    Objects.requireNonNull(defaultText, "defaultText is null");
    Objects.requireNonNull(description, "description is null");
    Objects.requireNonNull(kind, "kind is null");
  }

  /** The long option, e.g. {@code --min-keep}. */
  public String option() {
    return "--" + name;
  }

  /** The Spark conf key that sets it cluster-wide, e.g. {@code spark.sparkprune.min-keep}. */
  public String confKey() {
    return dev.sparkprune.jobs.prune.PruneKeys.CONF_PREFIX + name;
  }

  /** The description with the default appended, as the help prints it. */
  public String help() {
    return defaultText.isEmpty() ? description : description + " Default: " + defaultText;
  }
}
