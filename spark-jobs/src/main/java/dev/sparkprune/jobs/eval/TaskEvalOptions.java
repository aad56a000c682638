package dev.sparkprune.jobs.eval;

import static java.util.Objects.requireNonNull;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;

/**
 * Settings of one task evaluation, resolved on the driver.
 *
 * @param model the archive's URI, opened again on each executor
 * @param maxLength the window in tokens: requests longer than maxLength + 1 lose their oldest tokens
 * @param partitions Spark tasks the documents are spread over
 * @param requestsPerPass requests run per read of the weights: bounds an executor's activations
 *     (requests x tokens x hidden floats) against how often it reads each block
 */
public record TaskEvalOptions(String model, int maxLength, int partitions, int requestsPerPass) implements Serializable {
  /** Default of {@code --pass-size}. */
  public static final int REQUESTS_PER_PASS_DEFAULT = 64;

  public TaskEvalOptions {
    requireNonNull(model, "model is null");
    ValidationException.check(maxLength >= 1, "Invalid --max-length %d: must be positive", maxLength);
    ValidationException.check(partitions >= 1, "Invalid --partitions %d: must be positive", partitions);
    ValidationException.check(requestsPerPass >= 1, "Invalid --pass-size %d: must be positive", requestsPerPass);
  }
}
