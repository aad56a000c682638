package dev.sparkprune.tensorio;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** An invalid value keeps its bare reason for the layer that knows where the value came from. */
class TestValidationException {
  @Test
  void invalidValuesKeepTheirReason() {
    ValidationException invalid = ValidationException.invalid("layer metric", "foo", "use %s or %s", "angular", "block-influence");
    assertThat(invalid).hasMessage("Invalid layer metric foo: use angular or block-influence");
    assertThat(invalid.reason()).contains("use angular or block-influence");
  }

  @Test
  void otherMessagesHaveNoSeparateReason() {
    assertThat(new ValidationException("Cannot read x: file not found").reason()).isEmpty();
    assertThat(new ValidationException("Invalid x 1: bad", new IllegalStateException()).reason()).isEmpty();
  }
}
