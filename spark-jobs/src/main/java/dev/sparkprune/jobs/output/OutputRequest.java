package dev.sparkprune.jobs.output;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * What a run asks of its output folder: where it goes, whether an existing folder that is not a
 * sparkprune output may be replaced whole, and the inputs it must never equal, contain or lie
 * inside ({@link OutputGuard}), by the name messages give them ("--model" to its location).
 *
 * @param out the output folder, local or a Hadoop URI
 * @param overwrite whether {@code --overwrite} was given
 * @param inputs name to location, in the order messages check them
 */
public record OutputRequest(String out, boolean overwrite, Map<String, String> inputs) {
  public OutputRequest {
    Objects.requireNonNull(out, "out is null");
    inputs = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(inputs, "inputs is null")));
  }

  /** The option that names the output in messages. */
  public String option() {
    return "--out";
  }
}
