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
import org.apache.hadoop.fs.FileSystem;
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

  /**
   * A folder named like a set-aside output, {@code <out>.replaced-*}, that no publish of this
   * tool made (the user's calibration corpus, a dated backup) is never restored over, renamed or
   * deleted: recovery touches only what a marker naming that run and this output proves it made.
   */
  @Test
  void aFolderNamedLikeASetAsideOutputIsNeverTouchedUnlessThisToolsPublishMadeIt() throws IOException {
    Configuration conf = new Configuration();
    String out = dir.resolve("out").toString();
    Path corpus = Files.createDirectories(dir.resolve("out.replaced-corpus"));
    Files.writeString(corpus.resolve("train.txt"), "the user's calibration text");
    Path backup = Files.createDirectories(dir.resolve("out.replaced-2024"));
    Files.writeString(backup.resolve(OutputMarker.NAME), "{\"tool\": \"sparkprune\", \"run_id\": \"2024\", \"files\": {}}");
    Map<String, byte[]> before = FolderSnapshot.of(dir);

    Publisher first = stage(conf, out, "first");
    assertThat(dir.resolve("out")).doesNotExist();
    first.publish();
    // With --overwrite too: the earlier output is replaced, the siblings stay byte for byte.
    Publisher second = Publisher.prepare(conf, out, "second", true);
    second.publish();
    Map<String, byte[]> after = FolderSnapshot.of(dir);
    before.forEach((name, bytes) -> assertThat(after.get(name)).as(name).isEqualTo(bytes));
    assertThat(siblings()).containsExactly("out", "out.replaced-2024", "out.replaced-corpus");
  }

  /** A set-aside output that is this tool's own but also an input of the run (--model out.replaced-R) is left alone, with one line. */
  @Test
  void recoveryNeverMovesAnInputOfTheRun() throws IOException {
    Configuration conf = FlakyFileSystem.configuration();
    String out = FlakyFileSystem.uri(dir.resolve("out"));
    firstThenSecondThrowing(conf, out);
    Path setAside = dir.resolve("out.replaced-second");
    Map<String, byte[]> before = FolderSnapshot.of(setAside);
    String model = FlakyFileSystem.uri(setAside.resolve("model"));
    assertThatThrownBy(() -> Publisher.prepare(conf, out, "third", false, dev.sparkprune.jobs.spark.FaultProbe.NONE, Map.of("--model", model)))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("an interrupted publish left the earlier output in " + out.replace("flaky://", "flaky:") + ".replaced-second")
        .hasMessageContaining("and this run reads --model " + model + " from there");
    assertThat(FolderSnapshot.of(setAside)).containsOnlyKeys(before.keySet());
    assertThat(dir.resolve("out")).doesNotExist();
  }

  /** A real process that has exited: its PID names no process, or another one started later. */
  private static RunOwner deadOwner(String runId) throws IOException, InterruptedException {
    Process process = new ProcessBuilder("sleep", "60").start();
    long start = process.info().startInstant().orElseThrow().toEpochMilli();
    process.destroyForcibly().waitFor();
    RunOwner here = RunOwner.current(runId);
    return new RunOwner(runId, here.host(), here.bootId(), here.pidNamespace(), process.pid(), start);
  }

  /**
   * kill -9 leaves {@code <out>.staging-<run>} and, between the publish renames, the publish lock.
   * The next run removes both when their owner (host, boot, PID namespace, PID, start time) is a
   * process of this machine that is provably gone, and leaves a live run's, an unproven one's and
   * another machine's alone; a dead holder's lock does not block the run for 600 s.
   */
  @Test
  void theStagingFolderAndLockOfADeadRunAreRemovedAndALiveRunsAreNot() throws Exception {
    Configuration conf = new Configuration();
    String out = dir.resolve("out").toString();
    FileSystem fs = FileSystem.getLocal(conf).getRawFileSystem();
    RunOwner dead = deadOwner("dead");
    assertThat(dead.isProvablyDead()).isTrue();
    Path deadStaging = Files.createDirectories(dir.resolve("out.staging-dead/model"));
    dead.write(fs, new org.apache.hadoop.fs.Path(dir.resolve("out.staging-dead").resolve(RunOwner.NAME).toString()));
    Path alive = Files.createDirectories(dir.resolve("out.staging-alive"));
    RunOwner.current("alive").write(fs, new org.apache.hadoop.fs.Path(alive.resolve(RunOwner.NAME).toString()));
    RunOwner elsewhere = new RunOwner("elsewhere", "another-host", dead.bootId(), dead.pidNamespace(), dead.pid(), dead.startMillis());
    Path remote = Files.createDirectories(dir.resolve("out.staging-elsewhere"));
    elsewhere.write(fs, new org.apache.hadoop.fs.Path(remote.resolve(RunOwner.NAME).toString()));
    Path unproven = Files.createDirectories(dir.resolve("out.staging-old"));
    Path lock = dir.resolve("out.publish-lock");
    Files.write(lock, deadOwner("crashed").toJson());
    assertThat(deadStaging).exists();

    // Before any work: the dead holder's lock does not count as held (the default staleness is 600 s).
    Publisher.checkNotLocked(conf, new org.apache.hadoop.fs.Path(out));
    Publisher next = Publisher.prepare(conf, out, "next");
    assertThat(siblings()).containsExactly("out.staging-alive", "out.staging-elsewhere", "out.staging-next", "out.staging-old");
    assertThat(unproven).exists();
    next.publish();
    // The owner file went with the staging folder and is no part of the output.
    assertThat(dir.resolve("out").resolve(RunOwner.NAME)).doesNotExist();
    // A live holder's lock (this process) is not stale; a held lock fails the run: aHeldPublishLockFailsTheRunBeforeItsWork.
    Files.write(lock, RunOwner.current("holder").toJson());
    assertThat(RunOwner.read(fs, new org.apache.hadoop.fs.Path(lock.toString())).orElseThrow().isProvablyDead()).isFalse();
  }
}
