package dev.sparkprune.jobs.output;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * What a command asks of one output, all {@link OutputGuard} checks it by: the option that names
 * it in messages, where it goes, what it is (a folder published whole, a folder written into in
 * place, one file), whether an existing target that is not a sparkprune output may be replaced,
 * and the inputs it must never equal, contain or lie inside, by the name messages give them
 * ("--model" to its location). The publish takes the same inputs: its recovery and its removal
 * of dead runs' staging folders never touch one ({@link Publisher#preparer}).
 *
 * @param option the option that names the output in messages ("--out", "--report")
 * @param out the output, local or a Hadoop URI
 * @param kind what the output is, which decides what may be replaced
 * @param overwrite whether {@code --overwrite} was given (never for {@link OutputGuard.Kind#APPENDED_FOLDER})
 * @param inputs name to location, in the order messages check them
 */
public record OutputRequest(String option, String out, OutputGuard.Kind kind, boolean overwrite, Map<String, String> inputs) {
  public OutputRequest {
    Objects.requireNonNull(option, "option is null");
    Objects.requireNonNull(out, "out is null");
    Objects.requireNonNull(kind, "kind is null");
    inputs = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(inputs, "inputs is null")));
    if (kind == OutputGuard.Kind.APPENDED_FOLDER && overwrite) {
      throw new IllegalArgumentException("Cannot overwrite " + option + ": a folder written into in place is never replaced");
    }
  }

  /** A run's {@code --out}: a folder published whole. */
  public OutputRequest(String out, boolean overwrite, Map<String, String> inputs) {
    this("--out", out, OutputGuard.Kind.FOLDER, overwrite, inputs);
  }

  /** A folder published whole that messages name {@code option} (a batch row's output). */
  public static OutputRequest folder(String option, String out, boolean overwrite, Map<String, String> inputs) {
    return new OutputRequest(option, out, OutputGuard.Kind.FOLDER, overwrite, inputs);
  }

  /** A folder written into in place (a batch's status table): only one that is sparkprune's, never replaced. */
  public static OutputRequest appendedFolder(String option, String out, Map<String, String> inputs) {
    return new OutputRequest(option, out, OutputGuard.Kind.APPENDED_FOLDER, false, inputs);
  }

  /** One file (eval {@code --report}): an existing one only with {@code overwrite}. */
  public static OutputRequest file(String option, String out, boolean overwrite, Map<String, String> inputs) {
    return new OutputRequest(option, out, OutputGuard.Kind.FILE, overwrite, inputs);
  }
}
