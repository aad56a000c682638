package dev.sparkprune.jobs.output;

import dev.sparkprune.jobs.prune.FlakyFileSystem;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.jobs.FolderSnapshot;
import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Publishing whose outcome is unknown (a rename that throws, as an interrupted s3a copy does)
 * deletes nothing, and the next run restores or completes it. A hand-written file system fails
 * the second rename of the swap; every check compares bytes.
 */
class TestPublisher {
  @TempDir Path dir;

  /** Prepares a run and stages a small output whose bytes name the run. */
  private static Publisher stage(Configuration conf, String out, String runId) throws IOException {
    Publisher publisher = Publisher.prepare(conf, out, runId);
    Path staging = Path.of(new org.apache.hadoop.fs.Path(publisher.staging()).toUri().getPath());
    Files.createDirectories(staging.resolve("model"));
    Files.writeString(staging.resolve("model/model.safetensors"), "weights of " + runId);
    Files.writeString(staging.resolve("report.json"), "{\"run\": \"" + runId + "\"}");
    return publisher;
  }

  private List<String> siblings() throws IOException {
    try (Stream<Path> paths = Files.list(dir)) {
      return paths.map(path -> path.getFileName().toString()).sorted().toList();
    }
  }

  /** Publishes run "first", then runs "second" with its second rename (staging to output) throwing. */
  private Map<String, byte[]> firstThenSecondThrowing(Configuration conf, String out) throws IOException {
    stage(conf, out, "first").publish();
    Map<String, byte[]> earlier = FolderSnapshot.of(dir.resolve("out"));
    Publisher second = stage(conf, out, "second");
    FlakyFileSystem.renames.set(0);
    FlakyFileSystem.failingRename.set(2);
    assertThatThrownBy(second::publish)
        .isInstanceOf(Publisher.CommitStateUnknownException.class)
        .hasMessageContaining("Cannot publish " + out.replace("flaky://", "flaky:"))
        .hasMessageContaining("the outcome is unknown (renaming ")
        .hasMessageContaining("injected: the connection dropped")
        .hasMessageContaining("nothing was deleted")
        .hasMessageContaining("the next run on");
    second.abort();
    FlakyFileSystem.failingRename.set(0);
    // Neither the set-aside earlier output nor the staged new one is deleted, and the lock is released.
    assertThat(FolderSnapshot.of(dir.resolve("out.replaced-second"))).containsOnlyKeys(earlier.keySet())
        .allSatisfy((name, bytes) -> assertThat(bytes).isEqualTo(earlier.get(name)));
    assertThat(siblings()).doesNotContain("out.publish-lock");
    return earlier;
  }

  @Test
  void aRenameThatThrowsBeforeMovingDeletesNothingAndTheNextRunRestoresTheEarlierOutput() throws IOException {
    Configuration conf = FlakyFileSystem.configuration();
    String out = FlakyFileSystem.uri(dir.resolve("out"));
    Map<String, byte[]> earlier = firstThenSecondThrowing(conf, out);
    assertThat(dir.resolve("out")).doesNotExist();
    assertThat(Files.readString(dir.resolve("out.staging-second/model/model.safetensors"))).isEqualTo("weights of second");

    Publisher third = stage(conf, out, "third");
    Map<String, byte[]> restored = FolderSnapshot.of(dir.resolve("out"));
    assertThat(restored).containsOnlyKeys(earlier.keySet()).allSatisfy((name, bytes) -> assertThat(bytes).isEqualTo(earlier.get(name)));
    assertThat(siblings()).noneMatch(name -> name.startsWith("out.replaced-"));
    third.publish();
    assertThat(Files.readString(dir.resolve("out/model/model.safetensors"))).isEqualTo("weights of third");
  }

  @Test
  void aRenameThatThrowsAfterMovingIsCompletedByTheNextRun() throws IOException {
    Configuration conf = FlakyFileSystem.configuration();
    String out = FlakyFileSystem.uri(dir.resolve("out"));
    FlakyFileSystem.renameBeforeThrowing = true;
    firstThenSecondThrowing(conf, out);
    Map<String, byte[]> published = FolderSnapshot.of(dir.resolve("out"));
    assertThat(new String(published.get("model/model.safetensors"))).isEqualTo("weights of second");

    // The second run's output is whole in place (its marker's files and sizes): the next run finishes its publish.
    stage(conf, out, "third");
    assertThat(FolderSnapshot.of(dir.resolve("out"))).containsOnlyKeys(published.keySet())
        .allSatisfy((name, bytes) -> assertThat(bytes).isEqualTo(published.get(name)));
    assertThat(siblings()).containsExactly("out", "out.staging-third");
  }

  @Test
  void anInterruptedPublishWithSomethingElseInPlaceIsRefusedAndNothingIsDeleted() throws IOException {
    Configuration conf = FlakyFileSystem.configuration();
    String out = FlakyFileSystem.uri(dir.resolve("out"));
    Map<String, byte[]> earlier = firstThenSecondThrowing(conf, out);
    Files.createDirectories(dir.resolve("out"));
    Files.writeString(dir.resolve("out/notes.txt"), "someone's notes");
    // A partial copy of the new output looks the same: out holds a marker whose files are not all there.
    Files.copy(dir.resolve("out.staging-second/report.json"), dir.resolve("out/report.json"));
    Files.copy(dir.resolve("out.staging-second").resolve(OutputMarker.NAME), dir.resolve("out").resolve(OutputMarker.NAME));

    assertThatThrownBy(() -> Publisher.prepare(conf, out, "third"))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("an interrupted publish left the earlier output in " + out.replace("flaky://", "flaky:") + ".replaced-second")
        .hasMessageContaining("keep the one you want");
    assertThat(FolderSnapshot.of(dir.resolve("out.replaced-second"))).containsOnlyKeys(earlier.keySet());
    assertThat(Files.readString(dir.resolve("out/notes.txt"))).isEqualTo("someone's notes");
    assertThat(siblings()).containsExactly("out", "out.replaced-second", "out.staging-second");
    assertThat(Files.readString(dir.resolve("out.staging-second/model/model.safetensors"))).isEqualTo("weights of second");
  }

  @Test
  void theEarlierOutputIsCheckedAgainUnderTheLock() throws IOException {
    Configuration conf = new Configuration();
    String out = dir.resolve("out").toString();
    stage(conf, out, "first").publish();
    Publisher second = stage(conf, out, "second");
    // While the second run works, someone puts their own file into the output.
    Files.writeString(dir.resolve("out/notes.txt"), "mine");
    Map<String, byte[]> before = FolderSnapshot.of(dir.resolve("out"));
    assertThatThrownBy(second::publish).isInstanceOf(ValidationException.class)
        .hasMessageContaining("it is a sparkprune output but also holds [notes.txt]");
    second.abort();
    assertThat(FolderSnapshot.of(dir.resolve("out"))).containsOnlyKeys(before.keySet())
        .allSatisfy((name, bytes) -> assertThat(bytes).isEqualTo(before.get(name)));
    assertThat(siblings()).containsExactly("out");
  }

  @Test
  void anUnwritableOutputParentIsPermissionDenied() {
    Configuration conf = FlakyFileSystem.configuration();
    FlakyFileSystem.denyWrites = true;
    String out = FlakyFileSystem.uri(dir.resolve("out"));
    assertThatThrownBy(() -> Publisher.prepare(conf, out, "run"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot write --out %s: permission denied on flaky:%s", out, dir);
  }

  @Test
  void aHeldPublishLockFailsTheRunBeforeItsWorkAndAStaleOneDoesNot() throws IOException {
    Configuration conf = new Configuration();
    Path lock = Files.writeString(dir.resolve("out.publish-lock"), "another run");
    org.apache.hadoop.fs.Path out = new org.apache.hadoop.fs.Path(dir.resolve("out").toString());
    assertThatThrownBy(() -> Publisher.checkNotLocked(conf, out))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot write --out %s: another run holds %s; wait for it to finish, or delete that file if no run is publishing",
            out, new org.apache.hadoop.fs.Path(lock.toString()));
    conf.setLong(Publisher.STALE_LOCK_SECONDS, 0);
    Publisher.checkNotLocked(conf, out);
    assertThat(Files.readString(lock)).isEqualTo("another run");
  }
}
