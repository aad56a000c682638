package dev.sparkprune.jobs.eval;

import static java.util.Objects.requireNonNull;

import dev.sparkprune.scoring.model.MultipleChoice;
import dev.sparkprune.scoring.model.MultipleChoice.Accuracy;
import java.util.List;
import java.util.Optional;

/**
 * One task's metrics: {@code acc}, and {@code acc_norm} where lm-evaluation-harness reports it
 * for the task, each with its standard error.
 */
public record TaskResult(TaskSet task, Accuracy accuracy, Optional<Accuracy> normalizedAccuracy) {
  public TaskResult {
    requireNonNull(task, "task is null");
    requireNonNull(accuracy, "accuracy is null");
    requireNonNull(normalizedAccuracy, "normalizedAccuracy is null");
  }

  /** Scores each document from its choices' log-likelihoods, in document order. */
  static TaskResult of(TaskSet task, List<double[]> logLikelihoods) {
    List<TaskDocument> documents = task.documents();
    double[] correct = new double[documents.size()];
    double[] correctNormalized = new double[documents.size()];
    for (int d = 0; d < correct.length; d++) {
      TaskDocument document = documents.get(d);
      double[] scores = logLikelihoods.get(d);
      correct[d] = MultipleChoice.prediction(scores) == document.gold() ? 1 : 0;
      correctNormalized[d] = MultipleChoice.normalizedPrediction(scores, document.choiceLengths()) == document.gold() ? 1 : 0;
    }
    Optional<Accuracy> normalized = task.format().normalized() ? Optional.of(Accuracy.of(correctNormalized)) : Optional.empty();
    return new TaskResult(task, Accuracy.of(correct), normalized);
  }
}
