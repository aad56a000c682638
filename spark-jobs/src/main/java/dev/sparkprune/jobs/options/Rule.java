package dev.sparkprune.jobs.options;

import dev.sparkprune.tensorio.ValidationException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * A rule over several keys of resolved settings {@code O}, with a name and the message a
 * violation gets; the message names each key by its {@link Sources source}. A job lists its
 * rules once ({@link Rules}), in the order they are checked.
 *
 * @param <O> the resolved settings the rule reads
 */
public final class Rule<O> {
  private final String name;
  private final Predicate<O> holds;
  private final BiFunction<O, Sources, String> message;

  private Rule(String name, Predicate<O> holds, BiFunction<O, Sources, String> message) {
    this.name = Objects.requireNonNull(name, "name is null");
    this.holds = Objects.requireNonNull(holds, "holds is null");
    this.message = Objects.requireNonNull(message, "message is null");
  }

  /**
   * A rule whose violation gets {@code message(options, sources)}: "--save-stats needs --mode
   * one-shot: ...".
   */
  public static <O> Rule<O> of(String name, Predicate<O> holds, BiFunction<O, Sources, String> message) {
    return new Rule<>(name, holds, message);
  }

  /**
   * A rule checked by other code (a kernel's own check, in its own words): its reason is
   * prefixed with the keys it concerns, "Cannot combine --method, --update and --refine: ...".
   */
  public static <O> Rule<O> checkedBy(String name, Consumer<O> check, OptionKey<?>... keys) {
    List<OptionKey<?>> concerned = List.of(keys);
    return new Rule<O>(name, options -> {
      try {
        check.accept(options);
        return true;
      } catch (ValidationException e) {
        return false;
      }
    }, (options, sources) -> {
      try {
        check.accept(options);
        throw new IllegalStateException("Rule " + name + " failed, then held");
      } catch (ValidationException e) {
        List<String> names = new ArrayList<>();
        concerned.forEach(key -> names.add(sources.of(key)));
        return "Cannot combine " + Parsers.join(names, "and") + ": "
            + e.reason().orElse(e.getMessage());
      }
    });
  }

  public String name() {
    return name;
  }

  /** Throws a {@link ValidationException} with the rule's message when the settings break it. */
  public void check(O options, Sources sources) {
    if (!holds.test(options)) {
      throw new ValidationException(message.apply(options, sources));
    }
  }
}
