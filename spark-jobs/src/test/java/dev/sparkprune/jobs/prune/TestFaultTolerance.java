package dev.sparkprune.jobs.prune;

import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Task retries after injected failures give the same bytes as a clean run. */
class TestFaultTolerance {
  private static SparkSession spark;

  @TempDir Path dir;

  @BeforeAll
  static void start() {
    // local[2, 4]: two threads, and a task may fail up to three times before the job does.
    spark = SparkSession.builder().master("local[2,4]").appName("sparkprune-fault-tolerance")
        .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
        .config("spark.kryo.registrator", SparkpruneKryoRegistrator.class.getName())
        .getOrCreate();
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  private PruneReport run(Path out) throws IOException {
    PruneOptions options = PruneOptions.builder().model(SharedData.stories260K().toString()).out(out.toString())
        .method(PruningMethod.SPARSEGPT).target(SparsityTarget.unstructured(0.5))
        .calibration(SharedData.path("data/tinystories/tinystories_val_sample.txt").toString()).nsamples(4).seqlen(64).seed(1).build();
    return new PruneJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
  }

  @Test
  void injectedTaskFailuresStillGiveBitIdenticalOutputs() throws IOException {
    Path clean = dir.resolve("clean");
    run(clean);
    Path retried = dir.resolve("retried");
    spark.conf().set(PruneJob.INJECT_FAILURES, "embed,statistics,advance,score,write");
    try {
      run(retried);
    } finally {
      spark.conf().unset(PruneJob.INJECT_FAILURES);
    }
    assertThat(Files.readAllBytes(retried.resolve("model/model.safetensors"))).isEqualTo(Files.readAllBytes(clean.resolve("model/model.safetensors")));
    assertThat(TestPruneJobMasks.read(spark, retried)).isEqualTo(TestPruneJobMasks.read(spark, clean));
  }
}
