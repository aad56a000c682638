package dev.sparkprune.tensorio;

import dev.sparkprune.tensorio.arch.MixtureOfExperts;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
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
   * computed in double from the router weights [experts x hidden]. Softmax is monotonic, so the
   * top-k logits are the top-k probabilities; ties go to the lower expert index.
   */
  public static int[][] routedRows(float[] x, float[] router, int tokens, MixtureOfExperts moe) {
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
