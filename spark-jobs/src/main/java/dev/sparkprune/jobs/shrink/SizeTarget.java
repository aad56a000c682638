package dev.sparkprune.jobs.shrink;

import dev.sparkprune.tensorio.ValidationException;
import java.io.Serializable;
import java.util.Objects;

/**
 * A size budget for {@code shrink}: none (the cut is given explicitly), or the fraction of the
 * parameters to keep, counted over all of them ({@code --target-params}) or over those a token
 * runs through ({@code --target-active-params}: a sparse block's routed experts count top-k times).
 */
public record SizeTarget(Kind kind, double fraction) implements Serializable {
  /** No budget: the explicit --drop-layers, --mlp-keep, --heads-keep, --experts-keep. */
  public static final SizeTarget NONE = new SizeTarget(Kind.NONE, 1);

  /** What the fraction counts. */
  public enum Kind {
    NONE,
    PARAMETERS,
    ACTIVE_PARAMETERS
  }

  public SizeTarget {
    Objects.requireNonNull(kind, "kind is null");
    if (kind != Kind.NONE) {
      checkFraction(fraction);
    }
  }

  public boolean isSet() {
    return kind != Kind.NONE;
  }

  /** A budget keeps something and cuts something: a fraction strictly between 0 and 1. */
  static double checkFraction(double fraction) {
    if (!(fraction > 0 && fraction < 1)) {
      throw ValidationException.invalid("fraction of parameters to keep", fraction, "give a fraction in (0, 1), e.g. 0.7");
    }
    return fraction;
  }

  /** The option it came from, for messages and report.json. */
  public String option() {
    return kind == Kind.ACTIVE_PARAMETERS ? "--target-active-params" : "--target-params";
  }
}
