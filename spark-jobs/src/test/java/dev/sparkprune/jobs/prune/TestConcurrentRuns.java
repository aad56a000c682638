package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.output.OutputMarker;
import dev.sparkprune.jobs.output.Publisher;
import static org.assertj.core.api.Assertions.assertThat;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs racing to one output path: the last to publish wins, whole; nothing nested or left over.
 * Racing real jobs rarely overlaps their millisecond publishes, so the publish lock itself is
 * tested deterministically with a lock held by hand.
 */
class TestConcurrentRuns extends SparkTestBase {
  @TempDir Path dir;

  private static PruneOptions options(double sparsity, Path out) {
    return PruneOptions.builder().model(SharedData.stories260K().toString()).out(out.toString()).method(PruningMethod.MAGNITUDE)
        .target(SparsityTarget.unstructured(sparsity)).build();
  }

  private static void run(PruneOptions options) throws Exception {
    new PruneJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
  }

  @Test
  void publishWaitsForAHeldLockAndFailsClearlyWhenItIsNeverReleased() throws Exception {
    Path out = dir.resolve("locked-out");
    org.apache.hadoop.conf.Configuration conf = new org.apache.hadoop.conf.Configuration();
    Publisher first = Publisher.prepare(conf, out.toString(), "first");
    Files.writeString(Path.of(first.staging()).resolve("marker"), "first");
    first.publish();
    Path lock = dir.resolve("locked-out.publish-lock");
    Files.writeString(lock, "someone else");

    Publisher second = Publisher.prepare(conf, out.toString(), "second").withLockAttempts(100);
    Files.writeString(Path.of(second.staging()).resolve("marker"), "second");
    ExecutorService pool = Executors.newSingleThreadExecutor();
    Future<?> publishing = pool.submit(() -> {
      second.publish();
      return null;
    });
    Thread.sleep(500);
    // Still waiting: the earlier output is untouched while the lock is held.
    assertThat(publishing.isDone()).isFalse();
    assertThat(Files.readString(out.resolve("marker"))).isEqualTo("first");
    Files.delete(lock);
    publishing.get();
    pool.shutdown();
    assertThat(Files.readString(out.resolve("marker"))).isEqualTo("second");
    assertThat(lock).doesNotExist();

    Files.writeString(lock, "stuck");
    Publisher third = Publisher.prepare(conf, out.toString(), "third").withLockAttempts(3);
    org.assertj.core.api.Assertions.assertThatThrownBy(third::publish)
        .isInstanceOf(java.io.IOException.class)
        .hasMessageContaining("another run holds " + new org.apache.hadoop.fs.Path(lock.toString()))
        .hasMessageContaining("delete that file");
    third.abort();
    assertThat(Files.readString(out.resolve("marker"))).isEqualTo("second");
  }

  @Test
  void concurrentRunsOnOneOutputPublishWholeOutputs() throws Exception {
    double[] sparsities = {0.3, 0.6, 0.9};
    List<byte[]> expected = new ArrayList<>();
    for (double sparsity : sparsities) {
      Path alone = dir.resolve("alone-" + sparsity);
      run(options(sparsity, alone));
      expected.add(Files.readAllBytes(alone.resolve("model/model.safetensors")));
    }
    Path shared = dir.resolve("shared-out");
    for (int round = 0; round < 1; round++) {
      ExecutorService pool = Executors.newFixedThreadPool(sparsities.length);
      List<Future<?>> runs = new ArrayList<>();
      for (double sparsity : sparsities) {
        runs.add(pool.submit(() -> {
          run(options(sparsity, shared));
          return null;
        }));
      }
      for (Future<?> future : runs) {
        future.get();
      }
      pool.shutdown();
      byte[] published = Files.readAllBytes(shared.resolve("model/model.safetensors"));
      assertThat(expected).anySatisfy(bytes -> assertThat(bytes).isEqualTo(published));
      try (Stream<Path> children = Files.list(shared)) {
        assertThat(children.map(path -> path.getFileName().toString())).containsExactlyInAnyOrder("masks", "model", "report.json", OutputMarker.NAME);
      }
      try (Stream<Path> siblings = Files.list(dir)) {
        assertThat(siblings.map(path -> path.getFileName().toString()))
            .noneMatch(name -> name.contains(".staging-") || name.contains(".replaced-") || name.contains(".publish-lock"));
      }
    }
  }
}
