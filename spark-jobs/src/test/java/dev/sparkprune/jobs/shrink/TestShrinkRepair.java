package dev.sparkprune.jobs.shrink;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.jobs.calibration.CalibrationSamples;
import dev.sparkprune.jobs.plan.CalibrationSettings;
import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.linalg.LinearAlgebra;
import dev.sparkprune.scoring.linalg.NetlibLinearAlgebra;
import dev.sparkprune.scoring.model.DecoderModel;
import dev.sparkprune.scoring.model.Models;
import dev.sparkprune.scoring.model.Perplexity;
import dev.sparkprune.scoring.repair.RepairSettings;
import dev.sparkprune.scoring.repair.SequentialRepair;
import dev.sparkprune.scoring.structure.ChunkSummary;
import dev.sparkprune.scoring.structure.ExpertSaliency;
import dev.sparkprune.scoring.structure.ShrinkDecision;
import dev.sparkprune.scoring.structure.ShrinkSettings;
import dev.sparkprune.scoring.structure.StructureCalibration;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.shrink.ModelShape;
import dev.sparkprune.tensorio.shrink.ShrunkArchive;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code shrink --repair ls} on stories260K (a block dropped, 3/4 of the MLP channels and of the
 * KV groups: o_proj, down_proj and depth refits): the job's refitted tensors against
 * {@link SequentialRepair} run in this process on the same chunks, the archive bit for bit
 * across partitionings, and the perplexity against the same cut without repair, measured
 * directly on the text.
 */
class TestShrinkRepair extends SparkTestBase {
  private static final LocalFileIO IO = new LocalFileIO();
  private static final int NSAMPLES = 16;
  private static final int SEQLEN = 128;

  @TempDir Path dir;

  private static ShrinkOptions options(Path out, int partitions) {
    return new ShrinkOptions(
        SharedData.stories260K().toString(), out.toString(), SharedData.path("data/tinystories/tinystories_val_sample.txt").toString(),
        NSAMPLES, SEQLEN, 3, new ShrinkSettings(1, ShrinkSettings.LayerMetric.ANGULAR, 0.75, 0.75, ShrinkSettings.WidthMetric.ACTIVATION, 1,
            ExpertSaliency.Metric.REAP), "", SparsityTarget.parse("0.5"), partitions, false, true);
  }

  private static PrintStream quiet() {
    return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
  }

  @Test
  void refitsEqualTheInProcessRepairOnAnyPartitioningAndLowerPerplexity() throws IOException {
    Path out = dir.resolve("out");
    ShrinkOptions options = options(out, 2);
    new ShrinkJob(spark, options, quiet()).run();
    Path other = dir.resolve("out-3");
    new ShrinkJob(spark, options(other, 3), quiet()).run();
    assertThat(Files.readAllBytes(other.resolve("model/model.safetensors")))
        .as("bit-identical on 2 and 3 partitions")
        .isEqualTo(Files.readAllBytes(out.resolve("model/model.safetensors")));
    assertThat(out.resolve("_repair")).doesNotExist();

    // The same samples, chunks and decision in this process, then the in-process repair.
    LinearAlgebra linalg = NetlibLinearAlgebra.defaultInstance();
    ModelArchive source = ModelArchive.open(IO, options.model());
    ModelShape shape = ModelShape.of(source.config());
    int[][] samples = CalibrationSamples.sample(
        new HadoopFileIO(new Configuration()), options.calibration(), TokenizerLoader.load(source), NSAMPLES, SEQLEN, 3);
    CalibrationSource calibration = CalibrationSource.of(new CalibrationSettings(options.calibration(), NSAMPLES, SEQLEN, 3, 2), samples);
    Map<Integer, int[][]> numbered = new LinkedHashMap<>();
    List<int[][]> chunks = new ArrayList<>();
    calibration.chunks().forEach(chunk -> {
      numbered.put(chunk._1(), chunk._2());
      chunks.add(chunk._2());
    });
    Path unrepaired = dir.resolve("unrepaired");
    Files.createDirectories(unrepaired);
    ShrinkDecision decision;
    SequentialRepair.Result expected;
    try (DecoderModel dense = Models.open(source, linalg)) {
      decision = ShrinkDecision.choose(shape, options.settings(), ChunkSummary.foldInOrder(StructureCalibration.run(dense, shape, numbered, 1)));
      new ShrunkArchive(source, decision.plan()).writeTo(IO, unrepaired.toString());
      try (DecoderModel shrunk = Models.open(ModelArchive.open(IO, unrepaired.toString()), linalg)) {
        expected = SequentialRepair.run(dense, shrunk, decision.plan(), RepairSettings.DEFAULTS, chunks, List.of(), linalg);
      }
    }
    assertThat(expected.tensors()).isNotEmpty();

    JsonNode report = new ObjectMapper().readTree(out.resolve("report.json").toFile());
    assertThat(report.get("configuration").get("repair").textValue()).isEqualTo("ls");
    assertThat(report.get("repair")).hasSize(expected.refits().size());
    for (int r = 0; r < expected.refits().size(); r++) {
      SequentialRepair.BlockRefit refit = expected.refits().get(r);
      JsonNode node = report.get("repair").get(r);
      assertThat(node.get("tensor").textValue()).isEqualTo(refit.tensor());
      assertThat(node.get("block").intValue()).isEqualTo(refit.block());
      assertThat(node.get("residual_before").doubleValue()).isCloseTo(refit.errorBefore(), org.assertj.core.data.Percentage.withPercentage(0.1));
      assertThat(node.get("residual_after").doubleValue()).isCloseTo(refit.errorAfter(), org.assertj.core.data.Percentage.withPercentage(0.1));
      assertThat(node.get("residual_after").doubleValue()).isLessThan(node.get("residual_before").doubleValue());
    }

    // The job's archive holds the in-process refits, up to the order of the sums (pairwise tree vs chunk order).
    ModelArchive repaired = ModelArchive.open(IO, out.resolve("model").toString());
    try (DecoderModel model = Models.open(repaired, linalg)) {
      for (SequentialRepair.BlockRefit refit : expected.refits()) {
        float[] want = expected.tensors().get(refit.tensor());
        float[] got = model.loadBlock(refit.block()).tensor(refit.tensor());
        assertThat(got).hasSameSizeAs(want);
        double scale = 0;
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
          scale = Math.max(scale, Math.abs(want[i]));
          worst = Math.max(worst, Math.abs(want[i] - got[i]));
        }
        assertThat(worst).as(refit.tensor()).isLessThanOrEqualTo(1e-4 * scale);
      }
    }

    // Perplexity on 16 windows of 256 tokens of the text: repaired against the same cut unrepaired.
    int[] corpus = TokenizerLoader.load(source).encode(Files.readString(Path.of(options.calibration())), true);
    double plain;
    double fixed;
    try (DecoderModel model = Models.open(ModelArchive.open(IO, unrepaired.toString()), linalg)) {
      plain = Perplexity.evaluate(model, corpus, 256, 16, 8).perplexity();
    }
    try (DecoderModel model = Models.open(repaired, linalg)) {
      fixed = Perplexity.evaluate(model, corpus, 256, 16, 8).perplexity();
    }
    System.out.printf("shrink drop 1, mlp 0.75, heads 0.75 on stories260K: ppl %.3f unrepaired, %.3f repaired%n", plain, fixed);
    assertThat(fixed).isLessThan(0.9 * plain);
  }

  /**
   * {@code --target-params 0.7}: the chosen cut's written archive, run forward here on the
   * held-out windows, does at least as well as the best single-axis cut within the budget, found
   * by hand from the shapes (drop 2 blocks; MLP 1/2; halving the KV groups keeps 88%, over it) and
   * repaired in this process; the archive's size read from its header; the same choice and
   * report on 1 and 3 partitions. 8 windows of 64 tokens and 2 held out keep it quick: the claim
   * holds on whatever windows the job scored (at seed 0 it chooses a mixed cut, MLP 5/8 and 3 of
   * 4 KV groups: 3.152 against 3.183).
   */
  @Test
  void sizeBudgetBeatsTheBestSingleAxisCutOnHeldOutWindowsOnAnyPartitioning() throws IOException {
    ShrinkSettings none = new ShrinkSettings(0, ShrinkSettings.LayerMetric.ANGULAR, 1, 1, ShrinkSettings.WidthMetric.ACTIVATION, 1,
        ExpertSaliency.Metric.REAP);
    ShrinkOptions base = options(dir.resolve("budget-1"), 1);
    java.util.function.BiFunction<Path, Integer, ShrinkOptions> budget = (out, partitions) -> new ShrinkOptions(base.model(), out.toString(),
        base.calibration(), 8, 64, 0, none, "", SparsityTarget.parse("0.5"), partitions, false, true, 0,
        new SizeTarget(SizeTarget.Kind.PARAMETERS, 0.7));
    Path out = dir.resolve("budget-1");
    Path other = dir.resolve("budget-3");
    new ShrinkJob(spark, budget.apply(out, 1), quiet()).run();
    new ShrinkJob(spark, budget.apply(other, 3), quiet()).run();
    ObjectMapper json = new ObjectMapper();
    JsonNode report = json.readTree(out.resolve("report.json").toFile());
    JsonNode search = report.get("size_budget");
    assertThat(json.readTree(other.resolve("report.json").toFile()).get("size_budget")).as("1 vs 3 partitions").isEqualTo(search);
    assertThat(Files.readAllBytes(other.resolve("model/model.safetensors"))).isEqualTo(Files.readAllBytes(out.resolve("model/model.safetensors")));
    assertThat(out.resolve("_budget")).doesNotExist();

    // Parameters of the written archive from its header: at most 0.7 of 260,032.
    long limit = (long) Math.floor(0.7 * 260_032);
    long written = 0;
    try (var reader = dev.sparkprune.tensorio.SafetensorsReader.open(IO.newInputFile(out.resolve("model/model.safetensors").toString()))) {
      for (var tensor : reader.tensors()) {
        written += dev.sparkprune.tensorio.TensorInfo.numel(tensor.shape());
      }
    }
    assertThat(written).isLessThanOrEqualTo(limit).isEqualTo(report.get("parameters_after").longValue());
    List<JsonNode> chosen = new ArrayList<>();
    search.get("candidates").forEach(c -> {
      if (c.get("chosen").booleanValue()) {
        chosen.add(c);
      }
    });
    assertThat(chosen).hasSize(1);
    assertThat(chosen.get(0).get("parameters").longValue()).isEqualTo(written);
    assertThat(search.get("candidates")).allSatisfy(c -> assertThat(c.get("parameters").longValue()).isLessThanOrEqualTo(limit));

    // The single-axis cuts within the budget, by hand: a block holds 45,440 parameters, the rest 32,832.
    long block = 2L * 64 * 64 + 2L * 32 * 64 + 3L * 64 * 172 + 2 * 64;
    assertThat(32_832 + 3 * block).isLessThanOrEqualTo(limit);
    assertThat(32_832 + 4 * block).isGreaterThan(limit);
    assertThat(32_832 + 5 * (block - 3L * 64 * (172 - 88))).as("MLP 1/2 keeps 88 channels").isLessThanOrEqualTo(limit);
    assertThat(32_832 + 5 * (block - 3L * 64 * (172 - 104))).as("MLP 5/8 keeps 104").isGreaterThan(limit);
    assertThat(32_832 + 5 * (block - 2L * 32 * 64 - 2L * 16 * 64)).as("KV groups 2 of 4").isGreaterThan(limit);

    LinearAlgebra linalg = NetlibLinearAlgebra.defaultInstance();
    ModelArchive source = ModelArchive.open(IO, base.model());
    ModelShape shape = ModelShape.of(source.config());
    HadoopFileIO hadoop = new HadoopFileIO(new Configuration());
    int[][] samples = CalibrationSamples.sample(hadoop, base.calibration(), TokenizerLoader.load(source), 8, 64, 0);
    int[][] held = CalibrationSamples.heldOut(hadoop, base.calibration(), TokenizerLoader.load(source), 8, 64, 0, 2);
    // Held out: no held-out window shares a run of 8 or more tokens, at any shift, with a calibration window.
    for (int[] h : held) {
      for (int[] c : samples) {
        for (int shift = 0; shift <= 64 - 8; shift++) {
          assertThat(java.util.Arrays.equals(h, shift, 64, c, 0, 64 - shift)).isFalse();
          assertThat(java.util.Arrays.equals(c, shift, 64, h, 0, 64 - shift)).isFalse();
        }
      }
    }
    CalibrationSource calibration = CalibrationSource.of(new CalibrationSettings(base.calibration(), 8, 64, 0, 1), samples);
    Map<Integer, int[][]> numbered = new LinkedHashMap<>();
    List<int[][]> chunks = new ArrayList<>();
    calibration.chunks().forEach(chunk -> {
      numbered.put(chunk._1(), chunk._2());
      chunks.add(chunk._2());
    });
    double best = Double.POSITIVE_INFINITY;
    try (DecoderModel dense = Models.open(source, linalg)) {
      ChunkSummary summary = ChunkSummary.foldInOrder(StructureCalibration.run(dense, shape, numbered, 2));
      for (ShrinkSettings single : List.of(
          new ShrinkSettings(2, ShrinkSettings.LayerMetric.ANGULAR, 1, 1, ShrinkSettings.WidthMetric.ACTIVATION, 1, ExpertSaliency.Metric.REAP),
          new ShrinkSettings(0, ShrinkSettings.LayerMetric.ANGULAR, 0.5, 1, ShrinkSettings.WidthMetric.ACTIVATION, 1, ExpertSaliency.Metric.REAP))) {
        ShrinkDecision decision = ShrinkDecision.choose(shape, single, summary);
        Path unrepaired = Files.createDirectories(dir.resolve("single-" + single.dropBlocks()));
        new ShrunkArchive(source, decision.plan()).writeTo(IO, unrepaired.toString());
        SequentialRepair.Result result;
        try (DecoderModel shrunk = Models.open(ModelArchive.open(IO, unrepaired.toString()), linalg)) {
          result = SequentialRepair.run(dense, shrunk, decision.plan(), RepairSettings.DEFAULTS, chunks, List.of(), linalg);
        }
        Path repaired = Files.createDirectories(dir.resolve("single-repaired-" + single.dropBlocks()));
        new ShrunkArchive(source, decision.plan(), dev.sparkprune.tensorio.shrink.TensorReplacements.of(result.tensors()))
            .writeTo(IO, repaired.toString());
        best = Math.min(best, heldOutNll(repaired, held, linalg));
      }
    }
    double job = heldOutNll(out.resolve("model"), held, linalg);
    System.out.printf("size budget 0.7 on stories260K: chose %s, held-out NLL %.4f; best single-axis cut %.4f%n",
        chosen.get(0), job, best);
    assertThat(job).isLessThanOrEqualTo(best + 1e-4);
    assertThat(chosen.get(0).get("held_out_loss").doubleValue()).isCloseTo(job, org.assertj.core.data.Offset.offset(1e-3));
  }

  /** Mean next-token NLL of the windows through an archive, from its logits (log-softmax here). */
  private static double heldOutNll(Path archive, int[][] windows, LinearAlgebra linalg) throws IOException {
    try (DecoderModel model = Models.open(ModelArchive.open(IO, archive.toString()), linalg)) {
      var hidden = model.forward(windows);
      double sum = 0;
      int count = 0;
      for (int s = 0; s < windows.length; s++) {
        float[] logits = model.logits(hidden, s);
        int vocab = logits.length / windows[s].length;
        for (int t = 0; t + 1 < windows[s].length; t++) {
          double max = Double.NEGATIVE_INFINITY;
          for (int v = 0; v < vocab; v++) {
            max = Math.max(max, logits[t * vocab + v]);
          }
          double total = 0;
          for (int v = 0; v < vocab; v++) {
            total += Math.exp(logits[t * vocab + v] - max);
          }
          sum += max + Math.log(total) - logits[t * vocab + windows[s][t + 1]];
          count++;
        }
      }
      return sum / count;
    }
  }
}
