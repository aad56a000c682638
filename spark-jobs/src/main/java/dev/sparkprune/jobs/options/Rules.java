package dev.sparkprune.jobs.options;

import java.util.List;

/**
 * A job's multi-key rules, in the order they are checked: the first one broken is reported.
 *
 * @param <O> the resolved settings the rules read
 */
public final class Rules<O> {
  private final List<Rule<O>> rules;

  private Rules(List<Rule<O>> rules) {
    this.rules = List.copyOf(rules);
  }

  @SafeVarargs
  public static <O> Rules<O> of(Rule<O>... rules) {
    return new Rules<>(List.of(rules));
  }

  public List<Rule<O>> rules() {
    return rules;
  }

  /** Checks every rule in order; the first broken one throws, naming the keys by {@code sources}. */
  public void check(O options, Sources sources) {
    for (Rule<O> rule : rules) {
      rule.check(options, sources);
    }
  }
}
