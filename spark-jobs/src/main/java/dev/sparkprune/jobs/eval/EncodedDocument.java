package dev.sparkprune.jobs.eval;

import java.io.Serializable;

/**
 * A document's requests as token ids, shipped to the executors: request i scores
 * {@code continuations[i]} after {@code contexts[i]}. Token ids only; the strings, labels and
 * choice lengths stay on the driver.
 */
final class EncodedDocument implements Serializable {
  private static final long serialVersionUID = 1L;

  final int task;
  final int index;
  final int[][] contexts;
  final int[][] continuations;

  EncodedDocument(int task, int index, int[][] contexts, int[][] continuations) {
    this.task = task;
    this.index = index;
    this.contexts = contexts;
    this.continuations = continuations;
  }
}
