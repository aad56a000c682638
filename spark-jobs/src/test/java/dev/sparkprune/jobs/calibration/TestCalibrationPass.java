package dev.sparkprune.jobs.calibration;

import scala.Tuple2;
import java.util.List;
import java.util.ArrayList;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.jobs.spark.FaultProbe;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.SerializableConfiguration;
import dev.sparkprune.scoring.backend.ComputeBackend;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.BlockWeights;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.HiddenStates;
import dev.sparkprune.scoring.model.InputHook;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.stats.CalibrationStatistics;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The calibration pass with a visitor of block inputs and outputs, as a structured-pruning job
 * plugs in: its folded partials equal a direct one-process computation over the same chunks,
 * bit for bit, on any partitioning.
 */
class TestCalibrationPass extends SparkTestBase {
  private static final int SAMPLES = 7;
  private static final int SEQLEN = 32;
  private static final int CHUNK = 2;

  @TempDir Path dir;

  /** Per block: {sum over tokens of |output - input|^2, sum of |input|^2, tokens}; a block-influence figure. */
  static final class InputOutputDistance implements BlockVisitor<double[]> {
    private static final long serialVersionUID = 1L;
    private final boolean foldOnDriver;

    InputOutputDistance(boolean foldOnDriver) {
      this.foldOnDriver = foldOnDriver;
    }

    InputOutputDistance() {
      this(false);
    }

    @Override
    public boolean foldOnDriver() {
      return foldOnDriver;
    }

    @Override
    public ChunkVisit<double[]> start(int block, int chunk, ComputeBackend backend) {
      return (input, output) -> Map.of("block " + block, distance(input, output));
    }

    @Override
    public double[] merge(double[] earlier, double[] later) {
      for (int i = 0; i < earlier.length; i++) {
        earlier[i] += later[i];
      }
      return earlier;
    }
  }

  static double[] distance(HiddenStates input, HiddenStates output) {
    double change = 0;
    double norm = 0;
    for (int i = 0; i < input.values().length; i++) {
      double d = output.values()[i] - input.values()[i];
      change += d * d;
      norm += (double) input.values()[i] * input.values()[i];
    }
    return new double[] {change, norm, input.tokens()};
  }

  private static int[][] samples() throws IOException {
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ModelArchive archive = ModelArchive.open(io, SharedData.stories260K().toString());
    return CalibrationSamples.sample(io, SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(),
        TokenizerLoader.load(archive), SAMPLES, SEQLEN, 5);
  }

  /** Chunks of {@value #CHUNK} samples (the last shorter), smaller than the jobs' rule, for an uneven pairwise tree of 4. */
  private static List<Tuple2<Integer, int[][]>> chunks(int[][] samples) {
    List<Tuple2<Integer, int[][]>> chunks = new ArrayList<>();
    for (int first = 0, index = 0; first < samples.length; first += CHUNK, index++) {
      chunks.add(new Tuple2<>(index, Arrays.copyOfRange(samples, first, Math.min(samples.length, first + CHUNK))));
    }
    return chunks;
  }

  private Map<String, double[]> denseDistances(int partitions, boolean foldOnDriver) throws IOException {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    JobContext context = new JobContext(SharedData.stories260K().toString(), dir.resolve("run-" + partitions + "-" + foldOnDriver).toString(),
        jsc.broadcast(new SerializableConfiguration(new Configuration())), 1, FaultProbe.NONE);
    Map<String, double[]> out = new LinkedHashMap<>();
    try (CalibrationPass pass = CalibrationPass.embed(new JobStages(jsc, context, Optional.empty()), chunks(samples()), partitions, 5)) {
      assertThat(pass.chunks()).isEqualTo(4);
      for (int b = 0; b < 5; b++) {
        assertThat(pass.position()).isEqualTo(b);
        BlockPartials<double[]> partials = pass.collectAndAdvance(new InputOutputDistance(foldOnDriver));
        assertThat(partials.folded().isPresent()).isEqualTo(foldOnDriver);
        out.putAll(partials.asMap());
      }
      assertThatThrownBy(() -> pass.collect(new InputOutputDistance()))
          .isInstanceOf(IllegalStateException.class).hasMessage("Cannot calibrate block 5: the model has 5 blocks");
    }
    return out;
  }

  @Test
  void visitorsSeeEachChunksBlockInputAndOutputFoldedPairwiseOnAnyPartitioning() throws IOException {
    // Direct: each chunk of 2 samples as one batch (the last of 1), dense blocks, the pairwise
    // tree (c0 + c1) + (c2 + c3) — not ((c0 + c1) + c2) + c3 — on 1 and 3 partitions alike.
    int[][] samples = samples();
    Map<String, double[]> expected = new HashMap<>();
    try (DecoderModel model = Models.open(ModelArchive.open(new HadoopFileIO(new Configuration()), SharedData.stories260K().toString()),
        NetlibLinearAlgebra.defaultInstance())) {
      HiddenStates[] chunks = new HiddenStates[4];
      for (int c = 0; c < 4; c++) {
        chunks[c] = model.embed(Arrays.copyOfRange(samples, c * CHUNK, Math.min(SAMPLES, (c + 1) * CHUNK)));
      }
      for (int b = 0; b < 5; b++) {
        BlockWeights weights = model.loadBlock(b);
        double[][] partials = new double[4][];
        for (int c = 0; c < 4; c++) {
          HiddenStates next = model.runBlock(weights, chunks[c], InputHook.NONE);
          partials[c] = distance(chunks[c], next);
          chunks[c] = next;
        }
        InputOutputDistance sum = new InputOutputDistance();
        expected.put("block " + b, sum.merge(sum.merge(partials[0], partials[1]), sum.merge(partials[2], partials[3])));
      }
    }
    Map<String, double[]> one = denseDistances(1, false);
    Map<String, double[]> three = denseDistances(3, false);
    Map<String, double[]> oneOnDriver = denseDistances(1, true);
    Map<String, double[]> threeOnDriver = denseDistances(3, true);
    assertThat(one.keySet()).containsExactlyInAnyOrder("block 0", "block 1", "block 2", "block 3", "block 4");
    for (String key : expected.keySet()) {
      assertThat(one.get(key)).as(key).containsExactly(expected.get(key));
      assertThat(three.get(key)).as(key).containsExactly(expected.get(key));
      assertThat(oneOnDriver.get(key)).as(key).containsExactly(expected.get(key));
      assertThat(threeOnDriver.get(key)).as(key).containsExactly(expected.get(key));
      assertThat(one.get(key)[2]).isEqualTo(SAMPLES * SEQLEN);
    }
  }

  @Test
  void linearInputStatisticsCountEveryTokenOfEveryChunkOnce() throws IOException {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    JobContext context = new JobContext(SharedData.stories260K().toString(), dir.resolve("statistics").toString(),
        jsc.broadcast(new SerializableConfiguration(new Configuration())), 1, FaultProbe.NONE);
    LinearInputStatistics visitor = new LinearInputStatistics(CalibrationStatistics.HessianStorage.NONE, InputHook.ExpertInputs.ROUTED);
    try (CalibrationPass pass = CalibrationPass.embed(new JobStages(jsc, context, Optional.empty()), chunks(samples()), 2, 5)) {
      BlockPartials<CalibrationStatistics> partials = pass.collect(visitor);
      // Per-channel sums only: folded on the driver, brought back by the step's own job.
      assertThat(partials.folded()).isPresent();
      Map<String, CalibrationStatistics> block0 = partials.asMap();
      // Llama: q/k/v read one input, o another, gate/up one, down one.
      assertThat(block0).containsOnlyKeys("0/attention_input", "0/attention_output", "0/mlp_input", "0/mlp_hidden");
      assertThat(block0.values()).allSatisfy(statistics -> {
        assertThat(statistics.tokens()).isEqualTo(SAMPLES * SEQLEN);
        assertThat(statistics.sequences()).isEqualTo(SAMPLES);
      });
      assertThat(pass.position()).isZero();
    }
  }
}
