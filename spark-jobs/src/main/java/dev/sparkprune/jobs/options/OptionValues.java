package dev.sparkprune.jobs.options;

import dev.sparkprune.tensorio.ValidationException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The one precedence chain of every job's settings. A key's value comes from, in this order:
 *
 * <ol>
 *   <li>the CLI option or the manifest column of the same name ({@code --min-keep} / {@code min-keep});
 *   <li>the Spark conf {@code spark.sparkprune.<key>}, for keys a cluster may set ({@link OptionKey#fromConf()}),
 *       then a deprecated spelling of that conf key where one is still read;
 *   <li>the key's default.
 * </ol>
 *
 * Each value is parsed and checked by its key once, here, and a bad one is one line naming where
 * it came from: "Invalid --nsamples abc: must be a positive integer" or "Invalid
 * spark.sparkprune.nsamples abc: must be a positive integer". As {@link Sources}, it names each
 * key's source for the checks of the resolved settings.
 */
public final class OptionValues implements Sources {
  /** A value's text and where it came from: the option ({@code --key}) or the conf key. */
  public record Value(String text, String source) {
    public Value {
      Objects.requireNonNull(text, "text is null");
      Objects.requireNonNull(source, "source is null");
    }
  }

  private final Map<String, String> given;
  private final Map<String, String> conf;
  private final Map<String, String> deprecatedConf;
  /** Keys whose value came from the conf, by name, to name the conf key in later checks. */
  private final Map<String, String> fromConf = new HashMap<>();

  /**
   * @param given key name to text (a flag's text is true or false)
   * @param conf the {@code spark.sparkprune.*} entries of the Spark conf
   * @param deprecatedConf key name to a deprecated conf key, read after the current spelling
   */
  public OptionValues(Map<String, String> given, Map<String, String> conf, Map<String, String> deprecatedConf) {
    this.given = Map.copyOf(Objects.requireNonNull(given, "given is null"));
    this.conf = Map.copyOf(Objects.requireNonNull(conf, "conf is null"));
    this.deprecatedConf = Map.copyOf(Objects.requireNonNull(deprecatedConf, "deprecatedConf is null"));
  }

  /** Where the key's value is set, if anywhere: given, then the conf. */
  public Optional<Value> find(OptionKey<?> key) {
    String text = given.get(key.name());
    if (text != null) {
      return Optional.of(new Value(text, key.option()));
    }
    if (!key.fromConf()) {
      return Optional.empty();
    }
    for (String confKey : new String[] {key.confKey(), deprecatedConf.get(key.name())}) {
      if (confKey != null && conf.containsKey(confKey)) {
        fromConf.put(key.name(), confKey);
        return Optional.of(new Value(conf.get(confKey), confKey));
      }
    }
    return Optional.empty();
  }

  public boolean isSet(OptionKey<?> key) {
    return find(key).isPresent();
  }

  /** The key's value where it is set, parsed and checked. */
  public <T> Optional<T> value(OptionKey<T> key) {
    return find(key).map(value -> parse(key, value));
  }

  /**
   * The key's value where it is set, else its default; a flag not set is false.
   *
   * @throws ValidationException "Missing --key" for a required key not given
   */
  @SuppressWarnings("unchecked")
  public <T> T get(OptionKey<T> key) {
    Optional<Value> value = find(key);
    if (value.isPresent()) {
      return parse(key, value.get());
    }
    if (key.kind() == OptionKey.Kind.FLAG) {
      return (T) Boolean.FALSE;
    }
    ValidationException.check(key.kind() != OptionKey.Kind.REQUIRED, "Missing %s", key.option());
    return key.defaultValue().orElseThrow(() -> new IllegalStateException(key.option() + " has no default: read it with value()"));
  }

  /** Parses a value's text with its key: a bad one names its source. */
  public static <T> T parse(OptionKey<T> key, Value value) {
    try {
      return key.parse(value.text());
    } catch (ValidationException e) {
      throw invalid(value.source(), value.text(), e);
    }
  }

  /** Checks a value made in code against its key, naming it by {@code sources}. */
  public static <T> void check(OptionKey<T> key, T value, Sources sources) {
    try {
      key.check(value);
    } catch (ValidationException e) {
      throw invalid(sources.of(key), String.valueOf(value), e);
    }
  }

  private static ValidationException invalid(String source, String text, ValidationException e) {
    return new ValidationException("Invalid " + source + " " + text + ": " + e.reason().orElse(e.getMessage()));
  }

  /** At most one of two keys may be set. */
  public void checkExclusive(OptionKey<?> first, OptionKey<?> second) {
    ValidationException.check(!isSet(first) || !isSet(second), "Give either %s or %s, not both", of(first), of(second));
  }

  @Override
  public String of(OptionKey<?> key) {
    return fromConf.getOrDefault(key.name(), key.option());
  }

  /** Refuses settings the command does not have, listing those it has, instead of ignoring them. */
  public static void checkKnown(Map<String, String> given, Collection<? extends OptionKey<?>> keys, String command) {
    Set<String> unknown = new TreeSet<>(given.keySet());
    List<String> known = new ArrayList<>();
    keys.forEach(key -> {
      unknown.remove(key.name());
      known.add(key.name());
    });
    ValidationException.check(unknown.isEmpty(), "Unknown %s settings %s (known: %s)", command, unknown, String.join(", ", known));
  }

  /**
   * Refuses {@code spark.sparkprune.*} conf keys nothing reads (a typo such as
   * {@code spark.sparkprune.nsample} would otherwise be ignored), listing the known ones. Keys
   * under {@code reservedPrefix} belong to whoever reads them (the tests' fault probe).
   */
  public static void checkKnownConf(Map<String, String> conf, Collection<String> known, String reservedPrefix) {
    Set<String> unknown = new TreeSet<>();
    for (String key : conf.keySet()) {
      if (key.startsWith(OptionKey.CONF_PREFIX) && !known.contains(key) && !key.startsWith(reservedPrefix)) {
        unknown.add(key);
      }
    }
    ValidationException.check(unknown.isEmpty(), "Unknown Spark conf %s %s: no sparkprune setting has that name (known: %s)",
        unknown.size() == 1 ? "key" : "keys", String.join(", ", unknown), String.join(", ", new TreeSet<>(known)));
  }

  /** The {@code spark.sparkprune.*} entries of a Spark conf. */
  public static Map<String, String> confEntries(org.apache.spark.SparkConf conf) {
    Map<String, String> entries = new TreeMap<>();
    for (scala.Tuple2<String, String> entry : conf.getAllWithPrefix(OptionKey.CONF_PREFIX)) {
      entries.put(OptionKey.CONF_PREFIX + entry._1(), entry._2());
    }
    return entries;
  }
}
