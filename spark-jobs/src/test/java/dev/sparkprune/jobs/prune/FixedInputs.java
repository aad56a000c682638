package dev.sparkprune.jobs.prune;

import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/** Inputs with known answers, for resolving without files: token row lengths and fingerprints by location. */
public record FixedInputs(Map<String, Integer> tokenRowLengths, Map<String, String> fingerprints) implements PruneOptionsResolver.Inputs {
  /** No pre-tokenized source, no rules file. */
  public static final FixedInputs NONE = new FixedInputs(Map.of(), Map.of());

  @Override
  public OptionalInt tokenRowLength(String calibration) {
    Integer length = tokenRowLengths.get(calibration);
    return length == null ? OptionalInt.empty() : OptionalInt.of(length);
  }

  @Override
  public Optional<String> fingerprint(String location) {
    return Optional.ofNullable(fingerprints.get(location));
  }
}
