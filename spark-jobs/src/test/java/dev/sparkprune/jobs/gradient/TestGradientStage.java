package dev.sparkprune.jobs.gradient;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.jobs.calibration.CalibrationSamples;
import dev.sparkprune.jobs.plan.CalibrationSettings;
import dev.sparkprune.jobs.calibration.CalibrationSource;
import dev.sparkprune.jobs.spark.FaultProbe;
import dev.sparkprune.jobs.spark.JobContext;
import dev.sparkprune.jobs.spark.JobStages;
import dev.sparkprune.jobs.spark.ProgressLog;
import dev.sparkprune.jobs.spark.SerializableConfiguration;
import dev.sparkprune.scoring.grad.GradientStatistics;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.arch.ModelLayout;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.tokenizer.TokenizerLoader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The distributed gradient pass on stories260K: its gradient set equals the scoring module's
 * single-process computation ({@link SingleProcessGradients}: GradientPass over each chunk, sample
 * order within a chunk, the chunks folded over the pairwise tree), byte for byte, on 1 and 3
 * partitions (10 chunks on 3 partitions: tasks of uneven size, chunks
 * finishing out of order); so does each block's removal importance.
 */
class TestGradientStage extends SparkTestBase {
  /** 20 samples: 10 chunks of 2 (the jobs' rule), so chunks add two samples in order and the tree is uneven. */
  private static final int SAMPLES = 20;
  private static final int SEQLEN = 32;

  @TempDir Path dir;

  private static CalibrationSource source() throws IOException {
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ModelArchive archive = ModelArchive.open(io, SharedData.stories260K().toString());
    String text = SharedData.path("data/tinystories/tinystories_val_sample.txt").toString();
    CalibrationSettings settings = new CalibrationSettings(text, SAMPLES, SEQLEN, 11, 0);
    return CalibrationSource.of(settings, CalibrationSamples.sample(io, text, TokenizerLoader.load(archive), SAMPLES, SEQLEN, 11));
  }

  private GradientManifest compute(CalibrationSource source, int partitions, String name) throws IOException {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    String staging = dir.resolve(name).toString();
    JobContext context = new JobContext(SharedData.stories260K().toString(), staging,
        jsc.broadcast(new SerializableConfiguration(new Configuration())), 1, FaultProbe.NONE);
    CalibrationSource partitioned = CalibrationSource.of(new CalibrationSettings(source.settings().location(), SAMPLES, SEQLEN, 11, partitions),
        samples(source));
    ModelLayout layout = Architectures.layout(ModelArchive.open(new HadoopFileIO(new Configuration()), SharedData.stories260K().toString()));
    ByteArrayOutputStream progress = new ByteArrayOutputStream();
    GradientManifest manifest = GradientStage.compute(new JobStages(jsc, context, Optional.empty()), partitioned, layout,
        dir.resolve(name).resolve("grads").toString(), "fingerprint", new ProgressLog(new PrintStream(progress, true, StandardCharsets.UTF_8)));
    assertThat(progress.toString(StandardCharsets.UTF_8)).contains("in 10 chunks on " + partitions + " partitions");
    return manifest;
  }

  private static int[][] samples(CalibrationSource source) {
    List<int[]> all = new ArrayList<>();
    source.chunks().forEach(chunk -> all.addAll(Arrays.asList(chunk._2())));
    return all.toArray(int[][]::new);
  }

  @Test
  void theGradientSetEqualsTheSingleProcessFoldByteForByteOnAnyPartitioning() throws IOException {
    CalibrationSource source = source();
    assertThat(source.chunks()).hasSize(10);
    ModelArchive archive = ModelArchive.open(new HadoopFileIO(new Configuration()), SharedData.stories260K().toString());
    SingleProcessGradients expected = SingleProcessGradients.of(SharedData.stories260K().toString(), samples(source), 2);

    List<Linear> linears = Architectures.layout(archive).linears();
    assertThat(linears).hasSize(35);
    for (int partitions : new int[] {1, 3}) {
      GradientManifest manifest = compute(source, partitions, "p" + partitions);
      Path grads = dir.resolve("p" + partitions).resolve("grads");
      for (Linear linear : linears) {
        byte[] bytes = Files.readAllBytes(grads.resolve(linear.tensorName() + ".safetensors"));
        assertThat(bytes).as("%s on %d partitions", linear.tensorName(), partitions)
            .isEqualTo(expected.statistics().get(linear.tensorName()).toBytes());
      }
      assertThat(grads.resolve(GradientFiles.PARTIALS)).doesNotExist();
      assertThat(manifest.samples()).isEqualTo(SAMPLES);
      for (int b = 0; b < 5; b++) {
        assertThat(manifest.blockImportance()[b]).as("block %d", b).isEqualTo(Math.abs(expected.removal()[b] / SAMPLES));
      }
      JsonNode json = new ObjectMapper().readTree(grads.resolve(GradientManifest.FILE).toFile());
      assertThat(json.get("tensors")).hasSize(35);
      assertThat(json.get("loss").asText()).isEqualTo("causal-lm-mean-cross-entropy");
      assertThat(json.get("calibration_fingerprint").asText()).isEqualTo(source.fingerprint());
    }
    // Every sample counted once: the statistics hold all 20.
    assertThat(GradientStatistics.fromBytes("x", Files.readAllBytes(dir.resolve("p3/grads/model.layers.4.mlp.down_proj.weight.safetensors"))).samples())
        .isEqualTo(SAMPLES);
  }
}
