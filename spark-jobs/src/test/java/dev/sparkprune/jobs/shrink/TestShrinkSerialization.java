package dev.sparkprune.jobs.shrink;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.spark.SparkpruneKryoRegistrator;
import dev.sparkprune.scoring.structure.BlockSummary;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.DepthScores;
import dev.sparkprune.scoring.structure.WidthStatistics;
import dev.sparkprune.tensorio.ModelFixtures;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrinkPlan;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.serializer.JavaSerializer;
import org.apache.spark.serializer.KryoSerializer;
import org.apache.spark.serializer.SerializerInstance;
import org.junit.jupiter.api.Test;
import scala.reflect.ClassTag;

/**
 * What the shrink job ships: the plan in the write tasks' closures (Java serialization), and the
 * chunk summaries coming back as bytes (Java serialization read through a class filter, then as
 * byte[] through Spark's Kryo). Both survive, and the filter refuses any other class.
 */
class TestShrinkSerialization {
  @Test
  void planAndSummariesRoundTrip() throws IOException {
    SparkConf conf = new SparkConf().set("spark.kryo.registrator", SparkpruneKryoRegistrator.class.getName());
    ModelShape shape = ModelShape.of(ModelArchive.open(new LocalFileIO(), ModelFixtures.path("qwen3_moe").toString()).config());
    ShrinkPlan plan = ShrinkPlan.of(shape, List.of(0, 2), Map.of(),
        Map.of(0, new int[] {1}, 2, new int[] {0}), Map.of(0, new int[] {1, 3, 5, 7}, 2, new int[] {0, 1, 2, 3}));
    SerializerInstance java = new JavaSerializer(conf).newInstance();
    ClassTag<ShrinkPlan> planTag = scala.reflect.ClassTag$.MODULE$.apply(ShrinkPlan.class);
    ShrinkPlan copy = java.deserialize(java.serialize(plan, planTag), planTag);
    assertThat(copy.blocks().get(1).source()).isEqualTo(2);
    assertThat(copy.blocks().get(0).experts()).containsExactly(1, 3, 5, 7);
    assertThat(copy.source().moe()).isPresent();

    WidthStatistics statistics = new WidthStatistics(8);
    statistics.acceptExpertOutput(3, new int[] {0, 2}, new float[] {0.5f, 0.25f}, new float[] {3, 4, 0, 2}, 2);
    ChunkSummary summary = new ChunkSummary(
        5, DepthScores.empty(3, 1), List.of(new BlockSummary(0, statistics, new double[] {1}, new double[] {2}, new double[0], new double[0])));
    SerializerInstance kryo = new KryoSerializer(conf).newInstance();
    ClassTag<byte[]> bytesTag = scala.reflect.ClassTag$.MODULE$.apply(byte[].class);
    byte[] bytes = kryo.deserialize(kryo.serialize(ShrinkFunctions.serialize(summary), bytesTag), bytesTag);
    ChunkSummary back = ShrinkFunctions.deserialize(bytes);
    assertThat(back.chunk()).isEqualTo(5);
    assertThat(back.blocks().get(0).statistics().experts().reap(3)).isEqualTo((0.5 * 5 + 0.25 * 2) / 2);
    assertThat(back.blocks().get(0).oColumnNorms()).containsExactly(2.0);
  }

  /** A size-budget candidate's score comes back as bytes through the same filter. */
  @Test
  void candidateScoreRoundTrips() throws IOException {
    var score = new dev.sparkprune.scoring.repair.CandidateScore(
        new dev.sparkprune.scoring.repair.ShrinkCandidate(1, 0.75, 1, 1), 180_800, List.of(2), 2.5, 3.25);
    SerializerInstance kryo = new KryoSerializer(new SparkConf().set("spark.kryo.registrator", SparkpruneKryoRegistrator.class.getName()))
        .newInstance();
    ClassTag<byte[]> bytesTag = scala.reflect.ClassTag$.MODULE$.apply(byte[].class);
    byte[] bytes = kryo.deserialize(kryo.serialize(ShrinkFunctions.serialize(new BudgetSearch.Scored(4, score)), bytesTag), bytesTag);
    BudgetSearch.Scored back = ShrinkFunctions.deserialize(bytes, BudgetSearch.Scored.class);
    assertThat(back.index()).isEqualTo(4);
    assertThat(back.score()).isEqualTo(score);
  }

  /**
   * What the expert-parallel shrink caches and ships: a chunk's depth accumulator beside its
   * states (cached serialized, so each read gets its own copy) and the visitor's per-chunk
   * statistics, through Kryo and Java serialization, go on accumulating as the original does.
   */
  @Test
  void expertParallelStateRoundTrips() {
    SparkConf conf = new SparkConf().set("spark.kryo.registrator", SparkpruneKryoRegistrator.class.getName());
    float[] x0 = {1, 0, 0, 1};
    float[] x1 = {1, 1, 0, 1};
    float[] x2 = {0, 1, 1, 1};
    DepthScores.Accumulator expected = new DepthScores.Accumulator(3, 1);
    expected.observe(0, x0, x1, 2, 2);
    ExpertParallelSummaries.ChunkDepth depth = new ExpertParallelSummaries.ChunkDepth(
        4, new DepthScores.Accumulator(3, 1), new dev.sparkprune.scoring.model.HiddenStates(1, 2, 2, x1));
    depth.accumulator.observe(0, x0, x1, 2, 2);
    ExpertParallelSummaries.Chunks chunks = new ExpertParallelSummaries.Chunks();
    WidthStatistics statistics = new WidthStatistics(8);
    statistics.acceptExpertOutput(3, new int[] {0, 2}, new float[] {0.5f, 0.25f}, new float[] {3, 4, 0, 2}, 2);
    chunks.byChunk.put(4, statistics);
    expected.observe(1, x1, x2, 2, 2);
    for (SerializerInstance serializer : List.of(new JavaSerializer(conf).newInstance(), new KryoSerializer(conf).newInstance())) {
      ClassTag<ExpertParallelSummaries.ChunkDepth> depthTag = scala.reflect.ClassTag$.MODULE$.apply(ExpertParallelSummaries.ChunkDepth.class);
      ExpertParallelSummaries.ChunkDepth copy = serializer.deserialize(serializer.serialize(depth, depthTag), depthTag);
      assertThat(copy.chunk).isEqualTo(4);
      copy.accumulator.observe(1, copy.input.values(), x2, 2, 2);
      assertThat(copy.accumulator.result().blockInfluence(1)).isEqualTo(expected.result().blockInfluence(1));
      assertThat(copy.accumulator.result().angularDistance(0, 1)).isEqualTo(expected.result().angularDistance(0, 1));
      ClassTag<ExpertParallelSummaries.Chunks> chunksTag = scala.reflect.ClassTag$.MODULE$.apply(ExpertParallelSummaries.Chunks.class);
      ExpertParallelSummaries.Chunks back = serializer.deserialize(serializer.serialize(chunks, chunksTag), chunksTag);
      assertThat(back.byChunk.get(4).experts().reap(3)).isEqualTo((0.5 * 5 + 0.25 * 2) / 2);
    }
  }

  @Test
  void summaryFilterRefusesOtherClasses() throws IOException {
    byte[] bytes = ShrinkFunctions.serialize(new java.io.File("/tmp"));
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> ShrinkFunctions.deserialize(bytes))
        .isInstanceOf(java.io.InvalidClassException.class)
        .hasMessageContaining("REJECTED");
  }
}
