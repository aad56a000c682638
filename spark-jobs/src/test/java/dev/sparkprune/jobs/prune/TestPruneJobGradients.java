package dev.sparkprune.jobs.prune;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.jobs.calibration.CalibrationSamples;
import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.gradient.SingleProcessGradients;
import dev.sparkprune.jobs.prune.output.PruneReport;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.Weights;
import dev.sparkprune.scoring.backend.CpuBackend;
import dev.sparkprune.scoring.grad.GradientStatistics;
import dev.sparkprune.scoring.methods.Admm;
import dev.sparkprune.scoring.methods.Dsnot;
import dev.sparkprune.scoring.methods.PrunerZero;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GBLM and Pruner-Zero through the prune job on stories260K (8 samples of 128 tokens): the job's
 * gradient set equals the scoring module's single-process computation byte for byte, its masks
 * equal the kernels' masks computed from that G (GBLM in the sequential protocol run in one
 * process), and a saved set serves later runs (another method, OWL targets and the ADMM update)
 * with identical results.
 */
class TestPruneJobGradients extends SparkTestBase {
  @TempDir static Path dir;

  /** G of every linear, computed in this process: the reference for every run here. */
  private static Map<String, GradientStatistics> expected;
  private static Path gblm;
  private static PruneOptions gblmOptions;

  @BeforeAll
  static void pruneWithGblmSavingTheGradients() throws IOException {
    gblm = dir.resolve("gblm");
    gblmOptions = TestPruneJob.stories(PruningMethod.GBLM, SparsityTarget.nOfM(2, 4), gblm).saveGradients(true).build();
    TestPruneJob.run(gblmOptions);
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    int[][] samples = CalibrationSamples.sample(io, gblmOptions.calibration().get(),
        TokenizerLoader.load(ModelArchive.open(io, gblmOptions.model())), gblmOptions.nsamples(), gblmOptions.seqlen(), gblmOptions.seed());
    expected = SingleProcessGradients.of(gblmOptions.model(), samples, CalibrationSource.chunkSize(gblmOptions.nsamples())).statistics();
  }

  private static List<Linear> linears() throws IOException {
    return Architectures.layout(ModelArchive.open(new HadoopFileIO(new Configuration()), SharedData.stories260K().toString())).linears();
  }

  private static Map<String, Weights> l2() throws IOException {
    Map<String, Weights> gradients = new HashMap<>();
    for (Linear linear : linears()) {
      gradients.put(linear.tensorName(), Weights.of((int) linear.outFeatures(), (int) linear.inFeatures(),
          expected.get(linear.tensorName()).l2()));
    }
    return gradients;
  }

  @Test
  void gblmMasksEqualTheKernelOnTheSequentialProtocolWithTheSameGradients() throws IOException {
    Path grads = gblm.resolve("grads");
    for (Linear linear : linears()) {
      assertThat(Files.readAllBytes(grads.resolve(linear.tensorName() + ".safetensors"))).as("saved G of %s", linear.tensorName())
          .isEqualTo(expected.get(linear.tensorName()).toBytes());
    }
    Map<String, Mask> masks = TestPruneJob.readMasks(gblm);
    assertThat(masks).hasSize(35);
    Map<String, PruneResult> reference = TestPruneJob.referenceResults(gblmOptions, true, l2());
    reference.forEach((tensor, result) -> assertThat(masks.get(tensor)).as("GBLM mask of %s", tensor).isEqualTo(result.mask()));
    JsonNode report = new ObjectMapper().readTree(gblm.resolve("report.json").toFile());
    assertThat(report.get("gradients").get("source").asText()).isEqualTo("computed");
    assertThat(report.get("gradients").get("samples").asInt()).isEqualTo(8);
    assertThat(report.get("configuration").get("gradient_norm").asText()).isEqualTo("l2");
  }

  @Test
  void prunerZeroFromTheSavedGradientsWithOwlTargetsAndTheAdmmUpdate() throws IOException {
    Path out = dir.resolve("prunerzero-owl-admm");
    PruneOptions options = TestPruneJob.stories(PruningMethod.PRUNERZERO, SparsityTarget.unstructured(0.5), out)
        .gradients(gblm.resolve("grads").toString())
        .allocation(PruneOptions.Allocation.OWL)
        .refinement(new Refinement(Refinement.Update.ADMM, new Admm.Settings(5, 0.1, 1, 5), false, Dsnot.DEFAULTS, ""))
        .build();
    PruneReport report = TestPruneJob.run(options);
    JsonNode json = report.json();
    assertThat(json.get("gradients").get("source").asText()).isEqualTo("saved");
    Map<String, Mask> masks = TestPruneJob.readMasks(out);
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    try (SafetensorsReader dense = ModelArchive.open(io, SharedData.stories260K().toString()).openShard("model.safetensors");
        SafetensorsReader pruned = ModelArchive.open(io, out.resolve("model").toString()).openShard("model.safetensors")) {
      int updated = 0;
      for (Linear linear : linears()) {
        // Pruner-Zero's mask is the dense weight's and G's alone, at the block's OWL target; ADMM then re-fits the kept weights.
        SparsityTarget target = SparsityTarget.parse(json.get("allocation").get("blocks").get(linear.block()).get("target").asText());
        Weights weights = Weights.of((int) linear.outFeatures(), (int) linear.inFeatures(), dense.readFloats(linear.tensorName()));
        Mask mask = PrunerZero.prune(linear.tensorName(), weights, expected.get(linear.tensorName()).l2(), target, CpuBackend.defaultInstance(), 1)
            .mask();
        assertThat(masks.get(linear.tensorName())).as("Pruner-Zero mask of %s at %s", linear.tensorName(), target).isEqualTo(mask);
        float[] after = pruned.readFloats(linear.tensorName());
        for (int i = 0; i < after.length; i++) {
          if (mask.isKept(i / mask.cols(), i % mask.cols()) && after[i] != weights.values()[i]) {
            updated++;
            break;
          }
        }
      }
      assertThat(updated).as("linears whose kept weights ADMM changed").isEqualTo(35);
    }
  }

  @Test
  void reusedGradientsGiveTheSameMasksAndArchive() throws IOException {
    Path out = dir.resolve("gblm-reused");
    TestPruneJob.run(TestPruneJob.stories(PruningMethod.GBLM, SparsityTarget.nOfM(2, 4), out).gradients(gblm.resolve("grads").toString()).build());
    assertThat(TestPruneJob.readMasks(out)).isEqualTo(TestPruneJob.readMasks(gblm));
    assertThat(Files.readAllBytes(out.resolve("model/model.safetensors"))).isEqualTo(Files.readAllBytes(gblm.resolve("model/model.safetensors")));
    // Not saved: the run's output holds no gradients.
    assertThat(out.resolve("grads")).doesNotExist();
  }
}
