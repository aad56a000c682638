package dev.sparkprune.tensorio;

import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The architecture fixtures of {@code ../shared/fixtures/models/<arch>}: their golden tokens and
 * logits, and top-k routing computed directly from router weights for the MoE ones.
 */
public final class ModelFixtures {
  private static final LocalFileIO IO = new LocalFileIO();

  private ModelFixtures() {}

  public static Path path(String arch) {
    return SharedData.path("fixtures/models/" + arch);
  }

  /** The golden 64 tokens (I32, BOS first); MoE routing margins on them are at least 7e-5. */
  public static int[] goldenTokens(String arch) throws IOException {
    try (SafetensorsReader golden = SafetensorsReader.open(IO.newInputFile(path(arch).resolve("golden.safetensors").toString()))) {
      TensorInfo info = golden.tensor("tokens");
      ByteBuffer bytes = ByteBuffer.wrap(golden.readRawRows(info, 0, (int) info.rows())).order(ByteOrder.LITTLE_ENDIAN);
      int[] tokens = new int[(int) info.numel()];
      for (int i = 0; i < tokens.length; i++) {
        tokens[i] = bytes.getInt();
      }
      return tokens;
    }
  }

  /** The golden logits [64 x vocab] of one float64 forward pass over the golden tokens. */
  public static float[] goldenLogits(String arch) throws IOException {
    try (SafetensorsReader golden = SafetensorsReader.open(IO.newInputFile(path(arch).resolve("golden.safetensors").toString()))) {
      return golden.readFloats("logits");
    }
  }

  /**
   * For each expert, the tokens (rows of x [tokens x hidden]) top-k routing sends it, ascending,
   * computed in double from the router weights [experts x hidden] of a router without biases
   * (Mixtral, Qwen-MoE). Softmax is monotonic, so the top-k logits are the top-k probabilities;
   * ties go to the lower expert index.
   */
  public static int[][] routedRows(float[] x, float[] router, int tokens, MixtureOfExperts moe) {
    return rows(routingWeights(x, router, new float[0], new float[0], tokens, moe), moe.experts());
  }

  /** As {@link #routedRows(float[], float[], int, MixtureOfExperts)}, from {@link #routingWeights}. */
  public static int[][] routedRows(float[] x, float[] router, float[] routerBias, float[] correctionBias, int tokens, MixtureOfExperts moe) {
    return rows(routingWeights(x, router, routerBias, correctionBias, tokens, moe), moe.experts());
  }

  /**
   * Each token's routing weight for each expert [tokens][experts], 0 where not routed, in
   * double, directly from the definitions of the three router families: softmax then top-k
   * (renormalised with norm_topk_prob); sigmoid scores chosen by score + correction bias within
   * the topk_group groups of best two-expert sums, experts of other groups scoring 0, weights
   * the scores renormalised and times routed_scaling_factor; top-k of logits + router bias,
   * then a softmax over those k. {@code routerBias} and {@code correctionBias} may be empty.
   */
  public static double[][] routingWeights(float[] x, float[] router, float[] routerBias, float[] correctionBias, int tokens, MixtureOfExperts moe) {
    int experts = moe.experts();
    int hidden = router.length / experts;
    double[][] out = new double[tokens][experts];
    for (int t = 0; t < tokens; t++) {
      double[] logits = new double[experts];
      for (int e = 0; e < experts; e++) {
        for (int c = 0; c < hidden; c++) {
          logits[e] += (double) x[t * hidden + c] * router[e * hidden + c];
        }
        logits[e] += routerBias.length > 0 ? routerBias[e] : 0;
      }
      double[] weights = out[t];
      switch (moe.scoring()) {
        case SOFTMAX: {
          double max = Arrays.stream(logits).max().orElseThrow();
          double sum = Arrays.stream(logits).map(l -> Math.exp(l - max)).sum();
          double total = 0;
          for (int e : top(logits, moe.topK())) {
            weights[e] = Math.exp(logits[e] - max) / sum;
            total += weights[e];
          }
          if (moe.normalizeTopK()) {
            for (int e = 0; e < experts; e++) {
              weights[e] /= total;
            }
          }
          break;
        }
        case SIGMOID_GROUP_LIMITED: {
          int perGroup = experts / moe.groups();
          double[] scores = new double[experts];
          double[] choice = new double[experts];
          for (int e = 0; e < experts; e++) {
            scores[e] = 1 / (1 + Math.exp(-logits[e]));
            choice[e] = scores[e] + correctionBias[e];
          }
          double[] groupScores = new double[moe.groups()];
          for (int g = 0; g < moe.groups(); g++) {
            double[] members = Arrays.copyOfRange(choice, g * perGroup, (g + 1) * perGroup);
            int[] best = top(members, 2);
            groupScores[g] = members[best[0]] + members[best[1]];
          }
          boolean[] kept = new boolean[moe.groups()];
          for (int g : top(groupScores, moe.topKGroups())) {
            kept[g] = true;
          }
          for (int e = 0; e < experts; e++) {
            choice[e] = kept[e / perGroup] ? choice[e] : 0;
          }
          double total = 0;
          int[] chosen = top(choice, moe.topK());
          for (int e : chosen) {
            weights[e] = scores[e];
            total += scores[e];
          }
          for (int e : chosen) {
            weights[e] = (moe.normalizeTopK() ? weights[e] / total : weights[e]) * moe.scalingFactor();
          }
          break;
        }
        case TOP_K_SOFTMAX: {
          int[] chosen = top(logits, moe.topK());
          double max = logits[chosen[0]];
          double sum = 0;
          for (int e : chosen) {
            sum += Math.exp(logits[e] - max);
          }
          for (int e : chosen) {
            weights[e] = Math.exp(logits[e] - max) / sum;
          }
          break;
        }
        default:
          throw new IllegalStateException("Unknown scoring " + moe.scoring());
      }
    }
    return out;
  }

  /**
   * A keep list of half of each group of {@code perGroup} contiguous experts (what group-limited
   * routing requires), a different half for each {@code block}.
   */
  public static int[] halfPerGroup(int experts, int perGroup, int block) {
    int[] kept = new int[experts / 2];
    int i = 0;
    for (int g = 0; g < experts / perGroup; g++) {
      for (int j = 0; j < perGroup; j++) {
        if ((j + block + g) % 2 == 0) {
          kept[i++] = g * perGroup + j;
        }
      }
    }
    return kept;
  }

  /** The indices of the k largest values, largest first, the lower index on ties. */
  private static int[] top(double[] values, int k) {
    boolean[] taken = new boolean[values.length];
    int[] out = new int[k];
    for (int j = 0; j < k; j++) {
      int best = -1;
      for (int e = 0; e < values.length; e++) {
        if (!taken[e] && (best < 0 || values[e] > values[best])) {
          best = e;
        }
      }
      taken[best] = true;
      out[j] = best;
    }
    return out;
  }

  private static int[][] rows(double[][] weights, int experts) {
    List<List<Integer>> rows = new ArrayList<>();
    for (int e = 0; e < experts; e++) {
      rows.add(new ArrayList<>());
    }
    for (int t = 0; t < weights.length; t++) {
      for (int e = 0; e < experts; e++) {
        if (weights[t][e] != 0) {
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
