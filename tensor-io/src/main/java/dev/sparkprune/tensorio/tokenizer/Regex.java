package dev.sparkprune.tensorio.tokenizer;

import dev.sparkprune.tensorio.ValidationException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A regex from tokenizer.json, read as Hugging Face reads it (Oniguruma with Unicode classes:
 * {@code \s}, {@code \d}, {@code \w} and case folding are Unicode-aware, unlike Java's
 * defaults), and run under a step budget: a hostile pattern such as {@code a*a*a*a*b} backtracks
 * exponentially, so each search may read at most {@link #STEPS_PER_CHAR} characters per input
 * character before it is refused with a clear error instead of hanging.
 */
final class Regex {
  /** Generous: real tokenizer patterns read a few dozen characters per input character. */
  static final long STEPS_PER_CHAR = 4096;

  private static final long STEPS_MINIMUM = 1 << 20;

  private final Pattern pattern;
  private final String source;
  private final String location;
  /** A String pattern: matched with indexOf, an empty one never matches (as in HF). */
  private final boolean literal;

  private Regex(Pattern pattern, String source, String location, boolean literal) {
    this.pattern = pattern;
    this.source = source;
    this.location = location;
    this.literal = literal;
  }

  static Regex compile(String regex, String location) {
    try {
      return new Regex(Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS), regex, location, false);
    } catch (PatternSyntaxException e) {
      throw new ValidationException("Unsupported regex '" + regex + "' in " + location + ": " + e.getDescription());
    }
  }

  static Regex literal(String text, String location) {
    return new Regex(Pattern.compile(Pattern.quote(text)), text, location, true);
  }

  /** Receives match spans. */
  interface Spans {
    void accept(int start, int end);
  }

  /** Match spans as {start, end} pairs, in order, found left to right without overlap. */
  List<int[]> find(String text) {
    List<int[]> spans = new ArrayList<>();
    find(text, (start, end) -> spans.add(new int[] {start, end}));
    return spans;
  }

  /** Streams match spans, in order, found left to right without overlap. */
  void find(String text, Spans spans) {
    if (literal) {
      for (int at = source.isEmpty() ? -1 : text.indexOf(source); at >= 0; at = text.indexOf(source, at + source.length())) {
        spans.accept(at, at + source.length());
      }
      return;
    }
    Budgeted input = new Budgeted(text, STEPS_MINIMUM + STEPS_PER_CHAR * text.length());
    Matcher matcher = pattern.matcher(input);
    try {
      while (matcher.find()) {
        spans.accept(matcher.start(), matcher.end());
      }
    } catch (Budgeted.Exhausted e) {
      throw new ValidationException(String.format(
          "Cannot tokenize: the regex '%s' in %s took over %d steps per character on a text of %d characters "
              + "(catastrophic backtracking); fix the pattern in the tokenizer file",
          source, location, STEPS_PER_CHAR, text.length()));
    } catch (StackOverflowError e) {
      // java.util.regex recurses for some constructs; a long enough text exhausts the stack.
      throw new ValidationException(String.format(
          "Cannot tokenize: the regex '%s' in %s overflows the stack on a text of %d characters; split the text or fix the pattern",
          source, location, text.length()));
    }
  }

  /** The text as the matcher sees it, counting each character read against a budget. */
  private static final class Budgeted implements CharSequence {
    /** Thrown through the matcher when the budget is spent; caught in {@link #find}. */
    static final class Exhausted extends RuntimeException {
      private static final long serialVersionUID = 1L;

      Exhausted() {
        super(null, null, false, false);
      }
    }

    private final String text;
    private long budget;

    Budgeted(String text, long budget) {
      this.text = text;
      this.budget = budget;
    }

    @Override
    public char charAt(int index) {
      if (--budget < 0) {
        throw new Exhausted();
      }
      return text.charAt(index);
    }

    @Override
    public int length() {
      return text.length();
    }

    @Override
    public CharSequence subSequence(int start, int end) {
      return text.subSequence(start, end);
    }

    @Override
    public String toString() {
      return text;
    }
  }
}
