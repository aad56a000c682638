package dev.sparkprune.jobs.eval;

import dev.sparkprune.jobs.spark.SerializableConfiguration;
import dev.sparkprune.jobs.spark.StagedRun;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.ContinuationLogLikelihood;
import dev.sparkprune.scoring.model.ContinuationRequest;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;

/**
 * Zero-shot multiple-choice evaluation on Spark. The driver reads the task files and encodes
 * every request with the archive's tokenizer (so a bad row fails before any work, naming its
 * file and line); documents go to the executors in contiguous ranges; each partition opens the
 * model once and reads every block's weights once per pass of up to
 * {@link TaskEvalOptions#requestsPerPass()} requests; only the log-likelihoods come back. Every request runs alone through the model, so
 * the metrics are bit-identical for any number of partitions.
 */
public final class TaskEvalJob {
  private TaskEvalJob() {}

  /** Scores every task; results in the order of {@code tasks}. */
  public static List<TaskResult> run(
      SparkSession spark, Configuration conf, Tokenizer tokenizer, List<TaskSet> tasks, TaskEvalOptions options) throws IOException {
    List<List<double[]>> scores =
        StagedRun.start(spark, "eval", options.model()).run(run -> logLikelihoods(spark, conf, tokenizer, tasks, options));
    List<TaskResult> results = new ArrayList<>();
    for (int t = 0; t < tasks.size(); t++) {
      results.add(TaskResult.of(tasks.get(t), scores.get(t)));
    }
    return results;
  }

  /** The log-likelihood of every choice: per task, per document (in file order), per choice. */
  static List<List<double[]>> logLikelihoods(
      SparkSession spark, Configuration conf, Tokenizer tokenizer, List<TaskSet> tasks, TaskEvalOptions options) {
    List<EncodedDocument> encoded = encode(tokenizer, tasks, options.maxLength());
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Broadcast<SerializableConfiguration> confBroadcast = jsc.broadcast(new SerializableConfiguration(conf));
    int slices = Math.max(1, Math.min(options.partitions(), encoded.size()));
    List<DocumentScores> scores = jsc.parallelize(encoded, slices)
        .mapPartitions(new ScoreDocuments(options, confBroadcast))
        .collect();
    List<List<double[]>> byTask = new ArrayList<>();
    for (TaskSet task : tasks) {
      List<double[]> slots = new ArrayList<>();
      task.documents().forEach(document -> slots.add(null));
      byTask.add(slots);
    }
    for (DocumentScores document : scores) {
      byTask.get(document.task).set(document.index, document.logLikelihoods);
    }
    return byTask;
  }

  /** Every document's requests as lm-evaluation-harness encodes them; a request that cannot be scored names its file and line. */
  static List<EncodedDocument> encode(Tokenizer tokenizer, List<TaskSet> tasks, int maxLength) {
    List<EncodedDocument> encoded = new ArrayList<>();
    for (int t = 0; t < tasks.size(); t++) {
      TaskSet task = tasks.get(t);
      for (int d = 0; d < task.documents().size(); d++) {
        TaskDocument document = task.documents().get(d);
        int choices = document.choices().length;
        int[][] contexts = new int[choices][];
        int[][] continuations = new int[choices][];
        try {
          for (int c = 0; c < choices; c++) {
            ContinuationRequest request = ContinuationRequest.encode(tokenizer, document.contexts()[c], document.continuations()[c]);
            ValidationException.check(
                request.continuation().length <= maxLength,
                "choice %d has %d tokens, more than the window of %d (--max-length)",
                c,
                request.continuation().length,
                maxLength);
            contexts[c] = request.context();
            continuations[c] = request.continuation();
          }
        } catch (ValidationException e) {
          throw new ValidationException("Cannot score task file " + task.location() + " line " + document.line() + ": " + e.getMessage());
        }
        encoded.add(new EncodedDocument(t, d, contexts, continuations));
      }
    }
    return encoded;
  }

  /** One partition: the model opened once, requests scored in passes of whole documents. */
  static final class ScoreDocuments implements FlatMapFunction<Iterator<EncodedDocument>, DocumentScores>, Serializable {
    private static final long serialVersionUID = 1L;

    private final TaskEvalOptions options;
    private final Broadcast<SerializableConfiguration> conf;

    ScoreDocuments(TaskEvalOptions options, Broadcast<SerializableConfiguration> conf) {
      this.options = options;
      this.conf = conf;
    }

    @Override
    public Iterator<DocumentScores> call(Iterator<EncodedDocument> documents) throws IOException {
      List<DocumentScores> results = new ArrayList<>();
      if (!documents.hasNext()) {
        return results.iterator();
      }
      ModelArchive archive = ModelArchive.open(new HadoopFileIO(conf.value().get()), options.model());
      try (DecoderModel decoder = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
        List<EncodedDocument> pass = new ArrayList<>();
        int requests = 0;
        while (documents.hasNext()) {
          EncodedDocument document = documents.next();
          pass.add(document);
          requests += document.contexts.length;
          if (requests >= options.requestsPerPass() || !documents.hasNext()) {
            score(decoder, pass, results);
            pass.clear();
            requests = 0;
          }
        }
      }
      return results.iterator();
    }

    private void score(DecoderModel decoder, List<EncodedDocument> pass, List<DocumentScores> results) throws IOException {
      List<ContinuationRequest> requests = new ArrayList<>();
      for (EncodedDocument document : pass) {
        for (int c = 0; c < document.contexts.length; c++) {
          requests.add(new ContinuationRequest(document.contexts[c], document.continuations[c]));
        }
      }
      double[] logLikelihoods = ContinuationLogLikelihood.score(decoder, requests, options.maxLength());
      int next = 0;
      for (EncodedDocument document : pass) {
        double[] scores = new double[document.contexts.length];
        System.arraycopy(logLikelihoods, next, scores, 0, scores.length);
        next += scores.length;
        results.add(new DocumentScores(document.task, document.index, scores));
      }
    }
  }
}
