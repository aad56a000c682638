package dev.sparkprune.jobs.eval;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.Tokenizer;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.apache.hadoop.conf.Configuration;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The task job on stories260K and a TinyStories next-sentence set, against log-likelihoods
 * computed here another way: the summed NLL of context ++ continuation minus that of the context
 * alone, both from the model's own mean-NLL of a full forward pass, then acc, acc_norm and the
 * binomial form of the standard error, sqrt(p (1 - p) / (n - 1)), worked out here.
 */
class TestTaskEvalJob extends SparkTestBase {
  private static final int DOCUMENTS = 24;

  @TempDir static Path dir;

  /**
   * Perplexity on Spark with the MoE blocks expert-parallel (two routed experts per task, so no
   * task holds a whole block) equals the in-process whole-block evaluation, bit for bit: the same
   * batches through the same steps, NLL summed in window order; on 1 and 3 partitions, and on
   * gpt-oss (fused experts, attention sinks, sliding windows).
   */
  @Test
  void expertParallelPerplexityEqualsTheInProcessWholeBlockEvaluation() throws IOException {
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    for (String arch : new String[] {"qwen3_moe", "gpt_oss"}) {
      ModelArchive archive = ModelArchive.open(io, dev.sparkprune.tensorio.ModelFixtures.path(arch).toString());
      int[] corpus = dev.sparkprune.jobs.text.TextTokens.tokenize(
          io, SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(), TokenizerLoader.load(archive), 6 * 32).ids();
      dev.sparkprune.scoring.model.Perplexity whole;
      try (DecoderModel decoder = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
        whole = dev.sparkprune.scoring.model.Perplexity.evaluate(decoder, corpus, 32, 6, 2);
      }
      com.fasterxml.jackson.databind.JsonNode config = new com.fasterxml.jackson.databind.ObjectMapper().readTree(
          dev.sparkprune.tensorio.ModelFixtures.path(arch).resolve("config.json").toFile());
      long expert = 4 * 3 * config.get("hidden_size").asLong()
          * (config.has("moe_intermediate_size") ? config.get("moe_intermediate_size") : config.get("intermediate_size")).asLong();
      for (int partitions : arch.equals("qwen3_moe") ? new int[] {1, 3} : new int[] {2}) {
        PerplexityJob.Result sharded = PerplexityJob.run(spark, archive, corpus, 32, 6, 2, 2 * expert + 1, partitions);
        assertThat(sharded.expertParallelBlocks()).as(arch).isNotEmpty();
        assertThat(sharded.perplexity().windows()).isEqualTo(6);
        assertThat(sharded.perplexity().meanNll()).as("%s on %d partitions", arch, partitions).isEqualTo(whole.meanNll());
      }
    }
  }

  @Test
  void scoresMatchAnIndependentComputationOnAnyPartitioningAndPassSize() throws IOException {
    Path file = NextSentenceSet.write(SharedData.path("data/tinystories/tinystories_val_sample.txt"), dir.resolve("next_sentence.jsonl"), DOCUMENTS);
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    String model = SharedData.stories260K().toString();
    ModelArchive archive = ModelArchive.open(io, model);
    Tokenizer tokenizer = TokenizerLoader.load(archive);
    TaskSet task = TaskSet.read(io, file.toString(), Optional.empty());
    assertThat(task.format()).isEqualTo(TaskFormat.GENERIC);
    assertThat(task.documents()).hasSize(DOCUMENTS);

    List<double[]> onOne = TaskEvalJob.logLikelihoods(spark, io.conf(), tokenizer, List.of(task), new TaskEvalOptions(model, 512, 1, 64)).get(0);
    List<double[]> onThree = TaskEvalJob.logLikelihoods(spark, io.conf(), tokenizer, List.of(task), new TaskEvalOptions(model, 512, 3, 5)).get(0);
    double correct = 0;
    double correctNormalized = 0;
    try (DecoderModel decoder = Models.open(archive, NetlibLinearAlgebra.defaultInstance())) {
      for (int d = 0; d < DOCUMENTS; d++) {
        TaskDocument document = task.documents().get(d);
        assertThat(onThree.get(d)).as("document %d on 3 partitions", d).isEqualTo(onOne.get(d));
        double[] reference = new double[NextSentenceSet.CHOICES];
        double[] normalized = new double[NextSentenceSet.CHOICES];
        for (int c = 0; c < reference.length; c++) {
          reference[c] = differenceOfSums(decoder, tokenizer, document.contexts()[c], document.continuations()[c]);
          normalized[c] = reference[c] / document.choices()[c].codePointCount(0, document.choices()[c].length());
          assertThat(onOne.get(d)[c]).as("document %d choice %d", d, c).isCloseTo(reference[c], Offset.offset(2e-3));
        }
        correct += argmax(reference) == document.gold() ? 1 : 0;
        correctNormalized += argmax(normalized) == document.gold() ? 1 : 0;
      }
    }
    TaskResult result = TaskEvalJob.run(spark, io.conf(), tokenizer, List.of(task), new TaskEvalOptions(model, 512, 2, 64)).get(0);
    double acc = correct / DOCUMENTS;
    double accNorm = correctNormalized / DOCUMENTS;
    assertThat(result.accuracy().mean()).isEqualTo(acc);
    assertThat(result.accuracy().stderr()).isCloseTo(Math.sqrt(acc * (1 - acc) / (DOCUMENTS - 1)), Offset.offset(1e-12));
    assertThat(result.normalizedAccuracy()).isPresent();
    assertThat(result.normalizedAccuracy().get().mean()).isEqualTo(accNorm);
    assertThat(result.normalizedAccuracy().get().stderr()).isCloseTo(Math.sqrt(accNorm * (1 - accNorm) / (DOCUMENTS - 1)), Offset.offset(1e-12));
    // A model trained on TinyStories picks the true next sentence more often than chance (1 in 4).
    assertThat(acc).isGreaterThan(0.25);
  }

  /** log P(continuation | context) = NLL sum of the context alone - NLL sum of the whole. */
  private static double differenceOfSums(DecoderModel decoder, Tokenizer tokenizer, String context, String continuation) throws IOException {
    assertThat(context).isEqualTo(context.strip());
    int[] whole = tokenizer.encode(context + continuation, false);
    int[] contextTokens = Arrays.copyOf(whole, tokenizer.encode(context, false).length);
    assertThat(whole.length).isLessThanOrEqualTo(512);
    return nllSum(decoder, contextTokens) - nllSum(decoder, whole);
  }

  private static double nllSum(DecoderModel decoder, int[] tokens) throws IOException {
    int[][] batch = {tokens};
    return decoder.meanNll(decoder.forward(batch), batch)[0] * (tokens.length - 1);
  }

  private static int argmax(double[] values) {
    int best = 0;
    for (int i = 1; i < values.length; i++) {
      best = values[i] > values[best] ? i : best;
    }
    return best;
  }
}
