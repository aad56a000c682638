package dev.sparkprune.jobs.eval;

import java.io.Serializable;

/** What an executor sends back for one document: the log-likelihood of each choice. */
final class DocumentScores implements Serializable {
  private static final long serialVersionUID = 1L;

  final int task;
  final int index;
  final double[] logLikelihoods;

  DocumentScores(int task, int index, double[] logLikelihoods) {
    this.task = task;
    this.index = index;
    this.logLikelihoods = logLikelihoods;
  }
}
