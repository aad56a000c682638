package dev.sparkprune.jobs.options;

import dev.sparkprune.tensorio.ValidationException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The parsers and validators keys share; each raises its bare reason. */
public final class Parsers {
  public static final OptionKey.Parser<String> TEXT = text -> text;

  public static final OptionKey.Parser<Integer> INTEGER = text -> {
    try {
      return Integer.parseInt(text);
    } catch (NumberFormatException e) {
      throw new ValidationException("must be an integer");
    }
  };

  public static final OptionKey.Parser<Long> LONG = text -> {
    try {
      return Long.parseLong(text);
    } catch (NumberFormatException e) {
      throw new ValidationException("must be an integer");
    }
  };

  /** An integer above zero: "must be a positive integer" for anything else, number or not. */
  public static final OptionKey.Parser<Integer> POSITIVE_INTEGER = text -> {
    try {
      int value = Integer.parseInt(text);
      ValidationException.check(value > 0, "must be a positive integer");
      return value;
    } catch (NumberFormatException e) {
      throw new ValidationException("must be a positive integer");
    }
  };

  public static final OptionKey.Parser<Double> NUMBER = text -> {
    try {
      return Double.parseDouble(text);
    } catch (NumberFormatException e) {
      throw new ValidationException("must be a number");
    }
  };

  /** true or false, any case. */
  public static final OptionKey.Parser<Boolean> FLAG = text -> {
    String lower = text.toLowerCase(Locale.ROOT);
    ValidationException.check(lower.equals("true") || lower.equals("false"), "use true or false");
    return lower.equals("true");
  };

  private Parsers() {}

  /** One of the named values, any case: "use a, b or c" otherwise, in the order given. */
  @SafeVarargs
  public static <T> OptionKey.Parser<T> oneOf(Map.Entry<String, T>... values) {
    Map<String, T> byName = new LinkedHashMap<>();
    for (Map.Entry<String, T> value : values) {
      byName.put(value.getKey(), value.getValue());
    }
    return text -> {
      T value = byName.get(text.toLowerCase(Locale.ROOT));
      if (value == null) {
        throw new ValidationException("use " + alternatives(new ArrayList<>(byName.keySet())));
      }
      return value;
    };
  }

  /** "a, b or c". */
  public static String alternatives(List<String> names) {
    return join(names, "or");
  }

  /** "a, b and c" with {@code conjunction} "and". */
  public static String join(List<String> names, String conjunction) {
    if (names.size() == 1) {
      return names.get(0);
    }
    return String.join(", ", names.subList(0, names.size() - 1)) + " " + conjunction + " " + names.get(names.size() - 1);
  }

  /** A value of at least {@code min}. */
  public static OptionKey.Validator<Number> atLeast(long min, String reason) {
    return value -> ValidationException.check(value.doubleValue() >= min, "%s", reason);
  }
}
