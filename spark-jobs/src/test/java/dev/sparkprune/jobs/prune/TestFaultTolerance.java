package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.spark.FaultInjection;
import dev.sparkprune.jobs.spark.FaultProbe;
import dev.sparkprune.jobs.spark.SparkpruneKryoRegistrator;
import dev.sparkprune.jobs.prune.output.PruneReport;
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
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.TaskFailedReason;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Task retries after injected failures give the same bytes as a clean run. */
class TestFaultTolerance {
  private static final List<String> KINDS = List.of("embed", "statistics", "advance", "score", "masks", "write");

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
  void injectedTaskFailuresStillGiveBitIdenticalOutputs() throws IOException, TimeoutException {
    FailedTasks failed = new FailedTasks();
    spark.sparkContext().addSparkListener(failed);
    try {
      Path clean = dir.resolve("clean");
      run(clean);
      spark.sparkContext().listenerBus().waitUntilEmpty();
      assertThat(failed.byKind).as("failed tasks of the clean run").isEmpty();

      // A scoring task fails at "score" before it writes masks, so "masks" gets a run of its own.
      for (List<String> kinds : List.of(KINDS.stream().filter(kind -> !kind.equals("masks")).toList(), List.of("masks"))) {
        failed.byKind.clear();
        Path retried = dir.resolve("retried-" + String.join("-", kinds));
        spark.conf().set(FaultProbe.CLASS_KEY, FaultInjection.class.getName());
        spark.conf().set(FaultInjection.FAIL_FIRST_ATTEMPT, String.join(",", kinds));
        try {
          run(retried);
        } finally {
          spark.conf().unset(FaultInjection.FAIL_FIRST_ATTEMPT);
          spark.conf().unset(FaultProbe.CLASS_KEY);
        }
        spark.sparkContext().listenerBus().waitUntilEmpty();
        // Every kind failed at least once (else the retry path went untested), and nothing else failed.
        assertThat(failed.byKind).as("failed tasks by injected kind").containsOnlyKeys(kinds);
        assertThat(failed.byKind.values()).allSatisfy(count -> assertThat(count).isPositive());
        assertThat(Files.readAllBytes(retried.resolve("model/model.safetensors")))
            .isEqualTo(Files.readAllBytes(clean.resolve("model/model.safetensors")));
        assertThat(TestPruneJobMasks.read(spark, retried)).isEqualTo(TestPruneJobMasks.read(spark, clean));
        // Mask files are named by scoring stage and task, never by attempt: the same files, the same bytes, no leftovers.
        assertThat(TestPruneJobMasks.files(retried)).isEqualTo(TestPruneJobMasks.files(clean)).isNotEmpty();
      }
    } finally {
      spark.sparkContext().removeSparkListener(failed);
    }
  }

  /** Failed task ends counted by the task kind their injected error names; other failures under "other". */
  static final class FailedTasks extends SparkListener {
    private static final Pattern INJECTED = Pattern.compile("Injected failure of the first attempt of an? (\\w+) task");

    final Map<String, Integer> byKind = new ConcurrentHashMap<>();

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
      if (end.reason() instanceof TaskFailedReason reason) {
        Matcher injected = INJECTED.matcher(reason.toErrorString());
        byKind.merge(injected.find() ? injected.group(1) : "other: " + reason.toErrorString(), 1, Integer::sum);
      }
    }
  }
}
