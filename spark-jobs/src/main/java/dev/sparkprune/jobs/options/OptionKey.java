package dev.sparkprune.jobs.options;

import dev.sparkprune.tensorio.ValidationException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * One setting of a job, typed: its name (the CLI's long option without dashes, the manifest
 * column and the suffix of its {@code spark.sparkprune.*} conf key), the label and one-line
 * description the help shows, its parser and validators, and its default as text (parsed like
 * any given value, so the help shows exactly the default that applies).
 *
 * <p>Parsers and validators raise the bare reason ("must be a positive integer"), or a
 * {@link ValidationException#invalid} whose reason is kept; {@link OptionValues} names where the
 * value came from: "Invalid --nsamples abc: must be a positive integer".
 *
 * @param <T> the value's type
 */
public final class OptionKey<T> {
  /** Spark conf prefix: {@code spark.sparkprune.<key>} sets a key for every run of a cluster. */
  public static final String CONF_PREFIX = "spark.sparkprune.";

  /** How a key is given. */
  public enum Kind {
    /** A value that must be given. */
    REQUIRED,
    /** A value with a default, or none. */
    VALUE,
    /** Present or absent on the command line; true or false in a manifest or the conf. */
    FLAG
  }

  /** Text to value; throws a {@link ValidationException} with the reason. */
  @FunctionalInterface
  public interface Parser<T> {
    T parse(String text);
  }

  /** Checks a parsed value; throws a {@link ValidationException} with the reason. */
  @FunctionalInterface
  public interface Validator<T> {
    void check(T value);
  }

  private final String name;
  private final String label;
  private final String description;
  private final String defaultText;
  private final Kind kind;
  private final boolean fromConf;
  private final Parser<T> parser;
  private final List<Validator<? super T>> validators;

  private OptionKey(Builder<T> builder) {
    this.name = Objects.requireNonNull(builder.name, "name is null");
    this.label = builder.label;
    this.description = Objects.requireNonNull(builder.description, "description is null");
    this.defaultText = builder.defaultText;
    this.kind = builder.kind;
    this.fromConf = builder.fromConf;
    this.parser = Objects.requireNonNull(builder.parser, "parser is null");
    this.validators = List.copyOf(builder.validators);
    if (!defaultText.isEmpty()) {
      parse(defaultText);
    }
  }

  /** A key of kebab-case {@code name} whose values {@code parser} reads. */
  public static <T> Builder<T> builder(String name, Parser<T> parser) {
    return new Builder<>(name, parser);
  }

  /** A flag: present or absent on the command line, true or false elsewhere; false by default. */
  public static OptionKey<Boolean> flag(String name, String description) {
    Builder<Boolean> builder = builder(name, Parsers.FLAG).description(description);
    builder.kind = Kind.FLAG;
    return builder.build();
  }

  /** kebab-case, e.g. {@code min-keep}. */
  public String name() {
    return name;
  }

  /** The value's placeholder in the help, e.g. {@code N}; "" for a flag. */
  public String label() {
    return label;
  }

  public String description() {
    return description;
  }

  /** The default as the help shows it; "" when the key has none. */
  public String defaultText() {
    return defaultText;
  }

  public Kind kind() {
    return kind;
  }

  /** Whether a cluster may set it as {@code spark.sparkprune.<name>}. */
  public boolean fromConf() {
    return fromConf;
  }

  /** The long option, e.g. {@code --min-keep}. */
  public String option() {
    return "--" + name;
  }

  /** The Spark conf key that sets it cluster-wide, e.g. {@code spark.sparkprune.min-keep}. */
  public String confKey() {
    return CONF_PREFIX + name;
  }

  /** The description with the default appended, as the help prints it. */
  public String help() {
    return defaultText.isEmpty() ? description : description + " Default: " + defaultText;
  }

  /** Parses and checks a value's text; a bad one throws with the reason alone. */
  public T parse(String text) {
    T value = parser.parse(text.trim());
    check(value);
    return value;
  }

  /** Checks a value made in code (a builder's), as a parsed one is checked. */
  public void check(T value) {
    for (Validator<? super T> validator : validators) {
      validator.check(value);
    }
  }

  /** The default, parsed; empty when the key has none. */
  public Optional<T> defaultValue() {
    return defaultText.isEmpty() ? Optional.empty() : Optional.of(parse(defaultText));
  }

  @Override
  public String toString() {
    return option();
  }

  public static final class Builder<T> {
    private final String name;
    private final Parser<T> parser;
    private String label = "";
    private String description = "";
    private String defaultText = "";
    private Kind kind = Kind.VALUE;
    private boolean fromConf;
    private final List<Validator<? super T>> validators = new ArrayList<>();

    private Builder(String name, Parser<T> parser) {
      this.name = name;
      this.parser = parser;
    }

    public Builder<T> label(String value) {
      this.label = value;
      return this;
    }

    public Builder<T> description(String value) {
      this.description = value;
      return this;
    }

    /** The default, as text the parser reads ({@code String.valueOf} of a number). */
    public Builder<T> defaultValue(Object value) {
      this.defaultText = String.valueOf(value);
      return this;
    }

    /** The key must be given; it has no default. */
    public Builder<T> required() {
      this.kind = Kind.REQUIRED;
      return this;
    }

    /** A cluster may set it as {@code spark.sparkprune.<name>}. */
    public Builder<T> fromConf() {
      this.fromConf = true;
      return this;
    }

    public Builder<T> check(Validator<? super T> validator) {
      validators.add(Objects.requireNonNull(validator, "validator is null"));
      return this;
    }

    public OptionKey<T> build() {
      return new OptionKey<>(this);
    }
  }
}
