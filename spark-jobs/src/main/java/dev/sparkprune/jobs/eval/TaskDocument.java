package dev.sparkprune.jobs.eval;

import static java.util.Objects.requireNonNull;

import dev.sparkprune.tensorio.ValidationException;

/**
 * One multiple-choice document as lm-evaluation-harness builds its requests: choice i is scored
 * as {@code continuations[i]} after {@code contexts[i]}. Most tasks share one context and put the
 * choices (after the target delimiter " ") in the continuations; WinoGrande puts them in the
 * contexts and scores the same continuation. {@code choices} are the task's {@code doc_to_choice}
 * strings, whose lengths normalize {@code acc_norm}.
 */
public record TaskDocument(int line, String[] contexts, String[] continuations, String[] choices, int gold) {
  public TaskDocument {
    requireNonNull(contexts, "contexts is null");
    requireNonNull(continuations, "continuations is null");
    requireNonNull(choices, "choices is null");
    ValidationException.check(choices.length > 0, "Invalid document: it has no choices");
    ValidationException.check(
        contexts.length == choices.length && continuations.length == choices.length,
        "Invalid document: %d contexts and %d continuations for %d choices",
        contexts.length,
        continuations.length,
        choices.length);
    ValidationException.check(
        gold >= 0 && gold < choices.length,
        "Invalid label %d: the document has %d choices (labels 0 to %d)",
        gold,
        choices.length,
        choices.length - 1);
  }

  /** Lengths for {@code acc_norm}: Python's {@code len(choice)}, in code points. */
  public int[] choiceLengths() {
    int[] lengths = new int[choices.length];
    for (int i = 0; i < lengths.length; i++) {
      lengths[i] = choices[i].codePointCount(0, choices[i].length());
    }
    return lengths;
  }
}
