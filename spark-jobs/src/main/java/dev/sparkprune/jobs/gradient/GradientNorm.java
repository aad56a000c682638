package dev.sparkprune.jobs.gradient;

import dev.sparkprune.scoring.grad.GradientStatistics;
import dev.sparkprune.tensorio.ValidationException;
import java.util.Locale;

/**
 * Which accumulation of the per-sample gradients a gradient method scores with (GBLM-Pruner's
 * {@code gradient_computation.py}): l2 = sqrt(sum_s (100 g_s)^2), the file both authors' run
 * scripts pass, or l1 = sum_s |100 g_s|. Both come from the same saved statistics.
 */
public enum GradientNorm {
  L2,
  L1;

  public static GradientNorm parse(String text) {
    return switch (text.toLowerCase(Locale.ROOT)) {
      case "l2" -> L2;
      case "l1" -> L1;
      default -> throw ValidationException.invalid("gradient norm", text, "use l2 or l1");
    };
  }

  /** The per-weight statistic G, row-major like the weight. */
  public float[] of(GradientStatistics statistics) {
    return this == L2 ? statistics.l2() : statistics.l1();
  }

  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }
}
