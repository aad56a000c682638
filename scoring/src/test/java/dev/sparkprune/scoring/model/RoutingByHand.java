package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import java.util.ArrayList;
import java.util.List;

/**
 * Top-k routing computed directly in double from the router weights, written apart from the
 * model's {@code Routing}: softmax is monotonic, so the top-k of the logits are the top-k of the
 * probabilities; ties go to the lower expert index.
 */
public final class RoutingByHand {
  private RoutingByHand() {}

  /** For each expert, the tokens (rows of x [tokens x hidden]) routed to it, ascending. */
  public static int[][] route(float[] x, float[] router, int tokens, MixtureOfExperts moe) {
    int experts = moe.experts();
    int hidden = router.length / experts;
    List<List<Integer>> rows = new ArrayList<>();
    for (int e = 0; e < experts; e++) {
      rows.add(new ArrayList<>());
    }
    for (int t = 0; t < tokens; t++) {
      double[] logits = new double[experts];
      for (int e = 0; e < experts; e++) {
        for (int c = 0; c < hidden; c++) {
          logits[e] += (double) x[t * hidden + c] * router[e * hidden + c];
        }
      }
      boolean[] taken = new boolean[experts];
      for (int j = 0; j < moe.topK(); j++) {
        int best = -1;
        for (int e = 0; e < experts; e++) {
          if (!taken[e] && (best < 0 || logits[e] > logits[best])) {
            best = e;
          }
        }
        taken[best] = true;
      }
      for (int e = 0; e < experts; e++) {
        if (taken[e]) {
          rows.get(e).add(t);
        }
      }
    }
    int[][] out = new int[experts][];
    for (int e = 0; e < experts; e++) {
      out[e] = rows.get(e).stream().mapToInt(Integer::intValue).toArray();
    }
    return out;
  }
}
