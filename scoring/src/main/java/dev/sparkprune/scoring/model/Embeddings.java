package dev.sparkprune.scoring.model;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ArchiveTensor;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/** Checks shared by every architecture's embedding step, and block loading by name prefix. */
final class Embeddings {
  private Embeddings() {}

  /** Validates a rectangular batch of in-vocabulary ids within the position limit; returns its length. */
  static int checkTokens(int[][] tokens, int vocab, int maxPositions) {
    ValidationException.check(tokens.length > 0, "Cannot run the model on an empty batch");
    int length = tokens[0].length;
    ValidationException.check(length > 0, "Cannot run the model on empty sequences");
    ValidationException.check(
        length <= maxPositions,
        "Sequence length %d exceeds max_position_embeddings %d of the model",
        length,
        maxPositions);
    for (int s = 0; s < tokens.length; s++) {
      ValidationException.check(
          tokens[s].length == length, "Sequences of one batch must have equal length: sequence %d has %d, expected %d", s, tokens[s].length, length);
      for (int t = 0; t < length; t++) {
        int id = tokens[s][t];
        ValidationException.check(
            id >= 0 && id < vocab, "Token id %d at sequence %d position %d is outside the vocabulary of %d", id, s, t, vocab);
      }
    }
    return length;
  }

  /** Adds learned position rows {@code offset + t} of {@code table} to each token at position t. */
  static void addPositions(float[] values, int sequences, int length, int width, float[] table, int offset) {
    for (int s = 0; s < sequences; s++) {
      for (int t = 0; t < length; t++) {
        int row = (s * length + t) * width;
        for (int i = 0; i < width; i++) {
          values[row + i] += table[(t + offset) * width + i];
        }
      }
    }
  }

  /** Every tensor whose name starts with the block's prefix, linears in [out, in]. */
  static BlockWeights loadBlock(ArchiveWeights weights, int block, String prefix) throws IOException {
    return loadBlock(weights, block, prefix, Set.of());
  }

  /** The block's tensors but those named in {@code skipped} (a sharded block's routed experts). */
  static BlockWeights loadBlock(ArchiveWeights weights, int block, String prefix, Set<String> skipped) throws IOException {
    Map<String, float[]> tensors = new HashMap<>();
    for (ArchiveTensor tensor : weights.archive().tensors()) {
      if (tensor.name().startsWith(prefix) && tensor.dtype().isFloatConvertible() && !skipped.contains(tensor.name())) {
        tensors.put(tensor.name(), weights.read(tensor.name()));
      }
    }
    ValidationException.check(!tensors.isEmpty(), "Cannot load block %d: no tensors named %s*", block, prefix);
    return new BlockWeights(block, tensors);
  }
}
