package dev.sparkprune.tensorio;

/**
 * Input that the user must fix: a malformed file, a wrong shape, a bad option. Callers at the
 * edge (the CLI, the Spark driver) report its message as one line and exit with code 2.
 */
public class ValidationException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ValidationException(String message) {
    super(message);
  }

  public ValidationException(String message, Throwable cause) {
    super(message, cause);
  }

  public static void check(boolean condition, String format, Object... args) {
    if (!condition) {
      throw new ValidationException(String.format(format, args));
    }
  }
}
