package dev.sparkprune.jobs.options;

import dev.sparkprune.tensorio.ValidationException;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * The values of one resolution, each looked up once in precedence order: given (the CLI option or
 * the manifest column), then the Spark conf {@code spark.sparkprune.<key>} for keys that allow
 * it, then the key's default. Parsing failures become one line naming where the value came
 * from: "Invalid --nsamples abc: must be a positive integer" or "Invalid
 * spark.sparkprune.nsamples abc: ...". Any command's resolver builds its options from one.
 */
public final class KeyValues {
  /** A value and where it came from: the option ({@code --key}) or the conf key. */
  public record Value(String text, String source) {
    public Value {
      Objects.requireNonNull(text, "text is null");
      Objects.requireNonNull(source, "source is null");
    }
  }

  private final Map<String, String> given;
  private final Map<String, String> conf;
  private final Map<String, String> legacyConf;
  /** Options whose value came from the conf, to name the conf key in errors raised by later checks. */
  private final Map<String, String> fromConf = new TreeMap<>();

  /**
   * @param given key name to text (a flag's text is true or false)
   * @param conf the {@code spark.sparkprune.*} entries of the Spark conf
   * @param legacyConf key name to an earlier conf key, read after the current one
   */
  public KeyValues(Map<String, String> given, Map<String, String> conf, Map<String, String> legacyConf) {
    this.given = Map.copyOf(Objects.requireNonNull(given, "given is null"));
    this.conf = Map.copyOf(Objects.requireNonNull(conf, "conf is null"));
    this.legacyConf = Map.copyOf(Objects.requireNonNull(legacyConf, "legacyConf is null"));
  }

  /** Refuses keys the command does not have, listing them, instead of ignoring them. */
  public static void checkKnown(Map<String, String> given, List<OptionKey> keys, String command) {
    Set<String> unknown = new TreeSet<>(given.keySet());
    keys.forEach(key -> unknown.remove(key.name()));
    ValidationException.check(unknown.isEmpty(), "Unknown %s settings %s (known: %s)", command, unknown,
        String.join(", ", keys.stream().map(OptionKey::name).toList()));
  }

  public Optional<Value> find(OptionKey key) {
    String text = given.get(key.name());
    if (text != null) {
      return Optional.of(new Value(text, key.option()));
    }
    if (!key.fromConf()) {
      return Optional.empty();
    }
    for (String confKey : new String[] {key.confKey(), legacyConf.get(key.name())}) {
      if (confKey != null && conf.containsKey(confKey)) {
        fromConf.put(key.option(), confKey);
        return Optional.of(new Value(conf.get(confKey), confKey));
      }
    }
    return Optional.empty();
  }

  public Optional<String> text(OptionKey key) {
    return find(key).map(Value::text);
  }

  public String require(OptionKey key) {
    return text(key).orElseThrow(() -> new ValidationException("Missing " + key.option()));
  }

  /** The key's value (or its default) through a parser; a bare reason becomes "Invalid SOURCE VALUE: reason". */
  public <T> T parse(OptionKey key, Function<String, T> parser) {
    return parse(key, find(key).orElse(new Value(key.defaultText(), key.option())), parser);
  }

  public <T> T parse(OptionKey key, Value value, Function<String, T> parser) {
    try {
      return parser.apply(value.text());
    } catch (ValidationException e) {
      String reason = e.getMessage();
      // Parsers of the scoring module write whole messages naming the option; the ones here a bare reason.
      if (reason.startsWith("Invalid ") || reason.startsWith("Unknown ")) {
        throw new ValidationException(reason.replace(key.option(), value.source()));
      }
      throw new ValidationException("Invalid " + value.source() + " " + value.text() + ": " + reason);
    }
  }

  public int positiveInt(OptionKey key) {
    return parse(key, text -> {
      try {
        int value = Integer.parseInt(text.trim());
        ValidationException.check(value > 0, "must be a positive integer");
        return value;
      } catch (NumberFormatException e) {
        throw new ValidationException("must be a positive integer");
      }
    });
  }

  public double number(OptionKey key) {
    return parse(key, text -> {
      try {
        return Double.parseDouble(text.trim());
      } catch (NumberFormatException e) {
        throw new ValidationException("must be a number");
      }
    });
  }

  public boolean flag(OptionKey key) {
    return find(key).isPresent() && parse(key, KeyValues::flag);
  }

  /** Builds options whose constructor checks them; a check failing on a conf value names the conf key, not the option. */
  public <T> T build(Supplier<T> build) {
    try {
      return build.get();
    } catch (ValidationException e) {
      String message = e.getMessage();
      for (Map.Entry<String, String> entry : fromConf.entrySet()) {
        message = message.replaceAll(Pattern.quote(entry.getKey()) + "(?=[ :])", entry.getValue());
      }
      throw message.equals(e.getMessage()) ? e : new ValidationException(message);
    }
  }

  /** A flag's manifest or conf text: true or false, any case. */
  public static boolean flag(String text) {
    String lower = text.trim().toLowerCase(Locale.ROOT);
    ValidationException.check(lower.equals("true") || lower.equals("false"), "use true or false");
    return lower.equals("true");
  }

  /** An integer, or the bare reason "must be an integer". */
  public static <T extends Number> T integer(String text, Function<String, T> parser) {
    try {
      return parser.apply(text.trim());
    } catch (NumberFormatException e) {
      throw new ValidationException("must be an integer");
    }
  }
}
