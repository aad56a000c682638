package dev.sparkprune.jobs.gradient;

import dev.sparkprune.scoring.grad.GradientPass;
import dev.sparkprune.scoring.grad.GradientSink;
import dev.sparkprune.scoring.grad.GradientStatistics;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The reference a job's gradient set is checked against, in one process with the scoring
 * module alone: {@link GradientPass} over each chunk of samples (each sample alone, added in
 * sample order), then the chunks folded over the pairwise tree, written out here as a recursion
 * (left subtree plus right subtree; a left one alone where the right covers no chunk).
 *
 * @param statistics every weight's statistics, by tensor name
 * @param removal per block, the summed first-order removal change over all samples
 */
public record SingleProcessGradients(Map<String, GradientStatistics> statistics, double[] removal) {
  /** The gradient set of {@code samples} cut into chunks of {@code chunkSize}. */
  public static SingleProcessGradients of(String model, int[][] samples, int chunkSize) throws IOException {
    List<SingleProcessGradients> chunks = new ArrayList<>();
    try (DecoderModel decoder = Models.open(ModelArchive.open(new LocalFileIO(), model), NetlibLinearAlgebra.defaultInstance())) {
      for (int first = 0; first < samples.length; first += chunkSize) {
        chunks.add(chunk(decoder, Arrays.copyOfRange(samples, first, Math.min(samples.length, first + chunkSize))));
      }
    }
    int size = 1;
    while (size < chunks.size()) {
      size *= 2;
    }
    return fold(chunks, 0, size);
  }

  private static SingleProcessGradients chunk(DecoderModel model, int[][] tokens) throws IOException {
    Map<String, GradientStatistics> statistics = new HashMap<>();
    double[] removal = new double[model.layout().blocks().size()];
    GradientPass.of(model).run(tokens, new GradientSink() {
      @Override
      public void accept(int sequence, int block, String tensor, int rows, int cols, float[] gradient) {
        statistics.computeIfAbsent(tensor, name -> GradientStatistics.create(rows, cols)).add(gradient);
      }

      @Override
      public void acceptBlockRemoval(int sequence, int block, double firstOrderChange) {
        removal[block] += firstOrderChange;
      }
    });
    return new SingleProcessGradients(statistics, removal);
  }

  private static SingleProcessGradients fold(List<SingleProcessGradients> chunks, int first, int size) {
    if (size == 1) {
      return chunks.get(first);
    }
    SingleProcessGradients left = fold(chunks, first, size / 2);
    if (first + size / 2 >= chunks.size()) {
      return left;
    }
    SingleProcessGradients right = fold(chunks, first + size / 2, size / 2);
    Map<String, GradientStatistics> statistics = new HashMap<>();
    left.statistics().forEach((tensor, value) -> statistics.put(tensor, value.plus(right.statistics().get(tensor))));
    double[] removal = left.removal().clone();
    for (int b = 0; b < removal.length; b++) {
      removal[b] += right.removal()[b];
    }
    return new SingleProcessGradients(statistics, removal);
  }
}
