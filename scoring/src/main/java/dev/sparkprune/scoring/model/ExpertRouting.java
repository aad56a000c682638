package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.MixtureOfExperts;

/**
 * Which k experts each token goes to and with what weight: step 1 of a MoE block ({@link
 * MoeBlock}), computed from the router's logits as transformers' routers compute it, and step 2,
 * the token list of each expert ({@link #rows}). Ties go to the lower index everywhere (a stable
 * descending sort; transformers' topk leaves ties unspecified, and the fixtures' routing margins
 * are at least 7e-5). Immutable and small: [tokens x k] indices and weights.
 */
public final class ExpertRouting {
  private final int tokens;
  private final int experts;
  private final int k;
  /** [tokens x k] chosen experts, in the order the router picked them. */
  private final int[] chosen;
  /** [tokens x k] their routing weights. */
  private final float[] weights;
  /** Per expert, the tokens routed to it, ascending, and their weights: step 2's lists. */
  private final int[][] rowsByExpert;
  private final float[][] weightsByExpert;

  private ExpertRouting(int tokens, int experts, int k, int[] chosen, float[] weights) {
    this.tokens = tokens;
    this.experts = experts;
    this.k = k;
    this.chosen = chosen;
    this.weights = weights;
    int[] counts = new int[experts];
    for (int expert : chosen) {
      counts[expert]++;
    }
    this.rowsByExpert = new int[experts][];
    this.weightsByExpert = new float[experts][];
    for (int e = 0; e < experts; e++) {
      rowsByExpert[e] = new int[counts[e]];
      weightsByExpert[e] = new float[counts[e]];
    }
    int[] filled = new int[experts];
    // Tokens in ascending order, so each list comes out ascending.
    for (int i = 0; i < chosen.length; i++) {
      int e = chosen[i];
      rowsByExpert[e][filled[e]] = i / k;
      weightsByExpert[e][filled[e]++] = weights[i];
    }
  }

  /**
   * Routes each row of {@code logits} [tokens x experts] (x W^T, plus the router's bias where it
   * has one) the way {@code moe}'s router does; {@code correctionBias} [experts] is
   * e_score_correction_bias for {@link MixtureOfExperts.Scoring#SIGMOID_GROUP_LIMITED}, else
   * ignored.
   */
  public static ExpertRouting route(MixtureOfExperts moe, float[] logits, float[] correctionBias, int tokens) {
    int experts = moe.experts();
    ValidationException.check(logits.length == (long) tokens * experts, "Invalid router logits: %d values for %d x %d", logits.length, tokens, experts);
    int k = moe.topK();
    int[] chosen = new int[tokens * k];
    float[] weights = new float[tokens * k];
    float[] scores = new float[experts];
    float[] choice = new float[experts];
    float[] groupScores = new float[moe.groups()];
    int[] keptGroups = new int[moe.topKGroups()];
    for (int t = 0; t < tokens; t++) {
      int row = t * experts;
      switch (moe.scoring()) {
        case SOFTMAX: {
          // Softmax in float32, then the k largest probabilities.
          double logSum = Layers.logSumExp(logits, row, experts);
          for (int e = 0; e < experts; e++) {
            scores[e] = (float) Math.exp(logits[row + e] - logSum);
          }
          topK(scores, experts, k, chosen, t * k);
          gather(scores, chosen, weights, t * k, k);
          if (moe.normalizeTopK()) {
            normalize(weights, t * k, k, 0f);
          }
          break;
        }
        case SIGMOID_GROUP_LIMITED:
          routeGroupLimited(moe, logits, row, correctionBias, scores, choice, groupScores, keptGroups, chosen, weights, t * k);
          break;
        case TOP_K_SOFTMAX: {
          // The k largest logits, then a softmax over those k alone.
          System.arraycopy(logits, row, scores, 0, experts);
          topK(scores, experts, k, chosen, t * k);
          gather(scores, chosen, weights, t * k, k);
          double logSum = Layers.logSumExp(weights, t * k, k);
          for (int j = 0; j < k; j++) {
            weights[t * k + j] = (float) Math.exp(weights[t * k + j] - logSum);
          }
          break;
        }
        default:
          throw new IllegalStateException("Unknown scoring " + moe.scoring());
      }
    }
    return new ExpertRouting(tokens, experts, k, chosen, weights);
  }

  /**
   * DeepSeek-V3's router (DeepseekV3TopkRouter, Glm4MoeMoE.route_tokens_to_experts): s =
   * sigmoid(logits); choice = s + correction bias; each of the n_group contiguous groups scores
   * the sum of its two best choices; experts outside the topk_group best groups get choice 0
   * (transformers' masked_fill, not -infinity); the k best choices are taken, weighted by their
   * s (not the choice), divided by (sum + 1e-20) with norm_topk_prob, times
   * routed_scaling_factor.
   */
  private static void routeGroupLimited(
      MixtureOfExperts moe, float[] logits, int row, float[] correctionBias, float[] scores, float[] choice, float[] groupScores,
      int[] keptGroups, int[] chosen, float[] weights, int offset) {
    int experts = moe.experts();
    int groups = moe.groups();
    int perGroup = experts / groups;
    for (int e = 0; e < experts; e++) {
      scores[e] = (float) (1.0 / (1.0 + Math.exp(-logits[row + e])));
      choice[e] = scores[e] + correctionBias[e];
    }
    for (int g = 0; g < groups; g++) {
      groupScores[g] = twoBestSum(choice, g * perGroup, perGroup);
    }
    topK(groupScores, groups, keptGroups.length, keptGroups, 0);
    for (int g = 0; g < groups; g++) {
      if (!taken(keptGroups, 0, keptGroups.length, g)) {
        java.util.Arrays.fill(choice, g * perGroup, (g + 1) * perGroup, 0f);
      }
    }
    int k = moe.topK();
    topK(choice, experts, k, chosen, offset);
    gather(scores, chosen, weights, offset, k);
    if (moe.normalizeTopK()) {
      normalize(weights, offset, k, 1e-20f);
    }
    float factor = (float) moe.scalingFactor();
    for (int j = 0; j < k; j++) {
      weights[offset + j] *= factor;
    }
  }

  /** The sum of the two largest of values[from, from + count), count >= 2: a group's score. */
  private static float twoBestSum(float[] values, int from, int count) {
    float best = Float.NEGATIVE_INFINITY;
    float second = Float.NEGATIVE_INFINITY;
    for (int i = from; i < from + count; i++) {
      if (values[i] > best) {
        second = best;
        best = values[i];
      } else if (values[i] > second) {
        second = values[i];
      }
    }
    return best + second;
  }

  /** The indices of the k largest of values[0, count) into out[offset, offset + k), largest first, lower index on ties. */
  private static void topK(float[] values, int count, int k, int[] out, int offset) {
    for (int j = 0; j < k; j++) {
      int best = -1;
      for (int e = 0; e < count; e++) {
        // Strictly greater: the lower index keeps a tie.
        if (!taken(out, offset, j, e) && (best < 0 || values[e] > values[best])) {
          best = e;
        }
      }
      out[offset + j] = best;
    }
  }

  private static void gather(float[] values, int[] chosen, float[] out, int offset, int k) {
    for (int j = 0; j < k; j++) {
      out[offset + j] = values[chosen[offset + j]];
    }
  }

  /** Divides k weights by their float sum plus {@code epsilon}. */
  private static void normalize(float[] weights, int offset, int k, float epsilon) {
    float total = 0;
    for (int j = 0; j < k; j++) {
      total += weights[offset + j];
    }
    total += epsilon;
    for (int j = 0; j < k; j++) {
      weights[offset + j] /= total;
    }
  }

  private static boolean taken(int[] chosen, int offset, int count, int expert) {
    for (int j = 0; j < count; j++) {
      if (chosen[offset + j] == expert) {
        return true;
      }
    }
    return false;
  }

  /**
   * A routing computed elsewhere, from its [tokens x k] chosen experts and weights ({@link
   * #choices}, {@link #choiceWeights}): what a task that combines expert outputs rebuilds from the
   * arrays shipped to it.
   */
  public static ExpertRouting of(int experts, int k, int[] chosen, float[] weights) {
    ValidationException.check(
        k >= 1 && chosen.length == weights.length && chosen.length % k == 0, "Invalid routing: %d choices, %d weights, k %d", chosen.length,
        weights.length, k);
    for (int expert : chosen) {
      ValidationException.check(expert >= 0 && expert < experts, "Invalid routing: expert %d of %d", expert, experts);
    }
    return new ExpertRouting(chosen.length / k, experts, k, chosen.clone(), weights.clone());
  }

  /** [tokens x k] chosen experts, in the order the router picked them (a copy). */
  public int[] choices() {
    return chosen.clone();
  }

  /** [tokens x k] their routing weights (a copy). */
  public float[] choiceWeights() {
    return weights.clone();
  }

  public int tokens() {
    return tokens;
  }

  public int experts() {
    return experts;
  }

  public int topK() {
    return k;
  }

  /** Token t's j-th expert, in the order the router picked them. */
  public int chosen(int t, int j) {
    return chosen[t * k + j];
  }

  /** Step 2: the tokens routed to {@code expert}, ascending. */
  public int[] rows(int expert) {
    return rowsByExpert[expert].clone();
  }

  /** The number of tokens routed to {@code expert}. */
  public int count(int expert) {
    return rowsByExpert[expert].length;
  }

  /** The routing weights of {@link #rows}{@code (expert)}, in the same order. */
  public float[] weights(int expert) {
    return weightsByExpert[expert].clone();
  }

  /** Token t's routing weight for {@code expert}; the expert must be among its chosen. */
  public float weight(int t, int expert) {
    int index = weightIndex(t, expert);
    if (index < 0) {
      throw new IllegalArgumentException("Token " + t + " is not routed to expert " + expert);
    }
    return weights[index];
  }

  private int weightIndex(int t, int expert) {
    for (int j = 0; j < k; j++) {
      if (chosen[t * k + j] == expert) {
        return t * k + j;
      }
    }
    return -1;
  }

  /** Step 2's gather: rows {@code rows} of x [tokens x width], in that order. */
  public static float[] gather(float[] x, int[] rows, int width) {
    float[] out = new float[rows.length * width];
    for (int i = 0; i < rows.length; i++) {
      System.arraycopy(x, rows[i] * width, out, i * width, width);
    }
    return out;
  }
}
