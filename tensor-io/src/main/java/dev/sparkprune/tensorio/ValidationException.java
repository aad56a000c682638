package dev.sparkprune.tensorio;

import java.util.Optional;

/**
 * Input that the user must fix: a malformed file, a wrong shape, a bad option. Callers at the
 * edge (the CLI, the Spark driver) report its message as one line and exit with code 2.
 *
 * <p>Code that checks a value in its own words ("Invalid layer metric foo: use angular or
 * block-influence") raises it with {@link #invalid}, which keeps the bare reason: the layer
 * that knows where the value came from (a command-line option, a conf key) names that instead.
 */
public class ValidationException extends RuntimeException {
  private static final long serialVersionUID = 2L;

  /** The reason alone, "" unless made by {@link #invalid}. */
  private final String reason;

  public ValidationException(String message) {
    super(message);
    this.reason = "";
  }

  public ValidationException(String message, Throwable cause) {
    super(message, cause);
    this.reason = "";
  }

  private ValidationException(String message, String reason) {
    super(message);
    this.reason = reason;
  }

  public static void check(boolean condition, String format, Object... args) {
    if (!condition) {
      throw new ValidationException(String.format(format, args));
    }
  }

  /**
   * "Invalid THING VALUE: REASON", keeping the reason for a caller that names the value's source.
   *
   * @param thing what the value is, in the checking code's own words ("layer metric")
   * @param reasonFormat what is wrong and the fix ("use angular or block-influence"), formatted with args
   */
  public static ValidationException invalid(String thing, Object value, String reasonFormat, Object... args) {
    String reason = String.format(reasonFormat, args);
    return new ValidationException("Invalid " + thing + " " + value + ": " + reason, reason);
  }

  /** The bare reason of an {@link #invalid} value, without what the value was. */
  public Optional<String> reason() {
    return reason.isEmpty() ? Optional.empty() : Optional.of(reason);
  }
}
