package dev.sparkprune.jobs.output;

import dev.sparkprune.jobs.prune.FlakyFileSystem;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.ValidationException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every spelling of an input is refused as an output; only empty or sparkprune folders are replaced. */
class TestOutputGuard {
  @TempDir Path dir;
  private final Configuration conf = new Configuration();

  private void separate(String out, Path model) throws IOException {
    OutputGuard.checkSeparate(conf, "--out", out, Map.of("--model", model.toString()));
  }

  @Test
  void everySpellingOfTheModelIsRefused() throws IOException {
    Path model = Files.createDirectories(dir.resolve("x/model"));
    Files.createSymbolicLink(dir.resolve("link-to-x"), dir.resolve("x"));
    Files.createSymbolicLink(dir.resolve("link-to-model"), model);
    String relative = Path.of(System.getProperty("user.dir")).toAbsolutePath().relativize(model).toString();
    List<String> spellings = List.of(
        model.toString(), model + "/", dir + "/x/./model", model + "/../model", "file://" + model, "file:" + model,
        dir + "//x//model", relative, dir.resolve("link-to-x/model").toString(), dir.resolve("link-to-model").toString());
    for (String spelling : spellings) {
      assertThatThrownBy(() -> separate(spelling, model)).as(spelling)
          .isInstanceOf(ValidationException.class)
          .hasMessage("Invalid --out %s: it is the same folder as --model %s, which a run must never replace or write into;"
              + " choose another output folder", spelling, model);
    }
  }

  @Test
  void anOutputContainingOrInsideAnInputIsRefusedAndASiblingIsNot() throws IOException {
    Path model = Files.createDirectories(dir.resolve("p/out/llama"));
    assertThatThrownBy(() -> separate(dir + "/p/./out", model)).isInstanceOf(ValidationException.class)
        .hasMessageContaining("it contains --model " + model);
    assertThatThrownBy(() -> separate(dir + "/p/out/llama/pruned", model)).isInstanceOf(ValidationException.class)
        .hasMessageContaining("it lies inside --model " + model);
    assertThatCode(() -> separate(dir.resolve("link-to-p").toString(), model)).doesNotThrowAnyException();
    Files.createSymbolicLink(dir.resolve("link-to-p"), dir.resolve("p"));
    assertThatThrownBy(() -> separate(dir.resolve("link-to-p").toString(), model)).isInstanceOf(ValidationException.class)
        .hasMessageContaining("it contains --model");
    // A prefix of the name is not a parent folder.
    assertThatCode(() -> separate(dir + "/p/out/llama-pruned", model)).doesNotThrowAnyException();
    assertThatCode(() -> separate(dir + "/p/out/llam", model)).doesNotThrowAnyException();
  }

  @Test
  void onlyEmptyOrSparkpruneFoldersAreReplacedWithoutOverwrite() throws IOException {
    FileSystem fs = FileSystem.getLocal(conf).getRawFileSystem();
    org.apache.hadoop.fs.Path absent = new org.apache.hadoop.fs.Path(dir.resolve("absent").toString());
    OutputGuard.checkReplaceable(fs, absent, "--out x", false);
    Path empty = Files.createDirectories(dir.resolve("empty"));
    OutputGuard.checkReplaceable(fs, hadoop(empty), "--out x", false);

    Path notes = Files.createDirectories(dir.resolve("notes"));
    Files.writeString(notes.resolve("notes.txt"), "x");
    assertThatThrownBy(() -> OutputGuard.checkReplaceable(fs, hadoop(notes), "--out " + notes, false))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot replace --out %s: it exists and is not a sparkprune output (no _SPARKPRUNE_SUCCESS); choose another output"
            + " folder, or add --overwrite to replace it whole", notes);
    OutputGuard.checkReplaceable(fs, hadoop(notes), "--out x", true);

    // A marker that is not sparkprune's (someone's own file of that name) does not count.
    Files.writeString(notes.resolve(OutputMarker.NAME), "{\"tool\": \"other\", \"files\": {\"notes.txt\": 1}}");
    assertThatThrownBy(() -> OutputGuard.checkReplaceable(fs, hadoop(notes), "--out x", false)).hasMessageContaining("not a sparkprune output");
    Files.writeString(notes.resolve(OutputMarker.NAME), "not json");
    assertThatThrownBy(() -> OutputGuard.checkReplaceable(fs, hadoop(notes), "--out x", false)).hasMessageContaining("not a sparkprune output");

    Path output = Files.createDirectories(dir.resolve("output/model"));
    Files.writeString(output.resolve("model.safetensors"), "weights");
    Files.writeString(dir.resolve("output/report.json"), "{}");
    OutputMarker.write(fs, hadoop(dir.resolve("output")), "run1", hadoop(dir.resolve("output")).toString());
    assertThat(Files.readString(dir.resolve("output").resolve(OutputMarker.NAME))).contains("\"tool\" : \"sparkprune\"")
        .contains("\"model/model.safetensors\" : 7").contains("\"report.json\" : 2");
    OutputGuard.checkReplaceable(fs, hadoop(dir.resolve("output")), "--out x", false);
    Files.writeString(output.resolve("my-notes.txt"), "mine");
    assertThatThrownBy(() -> OutputGuard.checkReplaceable(fs, hadoop(dir.resolve("output")), "--out x", false))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("it is a sparkprune output but also holds [model/my-notes.txt], which sparkprune did not write");

    Path file = Files.writeString(dir.resolve("a-file"), "x");
    assertThatThrownBy(() -> OutputGuard.checkReplaceable(fs, hadoop(file), "--out " + file, true))
        .isInstanceOf(ValidationException.class).hasMessageContaining("it exists and is a file, not a folder");
  }

  @Test
  void aParentThatIsAFileOrUnwritableIsReportedBeforeAnyWork() throws IOException {
    Path file = Files.writeString(dir.resolve("plain-file"), "x");
    FileSystem fs = FileSystem.getLocal(conf);
    assertThatThrownBy(() -> OutputGuard.checkParent(fs, hadoop(file.resolve("sub/out")), "--out y"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot write --out y: %s is a file, not a folder", hadoop(file));

    Configuration flaky = FlakyFileSystem.configuration();
    FlakyFileSystem.denyWrites = true;
    org.apache.hadoop.fs.Path out = new org.apache.hadoop.fs.Path(FlakyFileSystem.uri(dir.resolve("new/out")));
    assertThatThrownBy(() -> OutputGuard.checkParent(out.getFileSystem(flaky), out, "--out z"))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot write --out z: permission denied on flaky:%s", dir);
  }

  private static org.apache.hadoop.fs.Path hadoop(Path path) {
    return new org.apache.hadoop.fs.Path(path.toUri());
  }

  /**
   * Hadoop's checksummed local file system hides {@code .*.crc} from its listings: a folder that
   * holds only a user's {@code .thesis.crc} looked empty, and an output holding {@code .notes.crc}
   * looked like sparkprune's alone. Both are someone's data; checked through the checksummed file
   * system the CLI uses ({@code PosixLocalFileSystem}) and Hadoop's own.
   */
  @Test
  void hiddenChecksumFilesAreSomeonesDataToo() throws IOException {
    for (FileSystem fs : List.of(FileSystem.getLocal(conf), localWith(dev.sparkprune.tensorio.io.PosixLocalFileSystem.class))) {
      Path thesis = Files.createDirectories(dir.resolve("thesis-" + fs.getClass().getSimpleName()));
      Files.writeString(thesis.resolve(".thesis.crc"), "my only copy");
      assertThat(fs.listStatus(hadoop(thesis))).as("the checksummed listing hides it").isEmpty();
      assertThatThrownBy(() -> OutputGuard.checkReplaceable(fs, hadoop(thesis), "--out " + thesis, false))
          .isInstanceOf(ValidationException.class)
          .hasMessage("Cannot replace --out %s: it exists and is not a sparkprune output (no _SPARKPRUNE_SUCCESS); choose another output"
              + " folder, or add --overwrite to replace it whole", thesis);

      Path output = Files.createDirectories(dir.resolve("output-" + fs.getClass().getSimpleName()));
      Files.writeString(output.resolve("report.json"), "{}");
      OutputMarker.write(fs, hadoop(output), "run1", hadoop(output).toString());
      OutputGuard.checkReplaceable(fs, hadoop(output), "--out x", false);
      Files.createDirectories(output.resolve("mine"));
      Files.writeString(output.resolve(".notes.crc"), "notes");
      Files.writeString(output.resolve("mine/.data.crc"), "data");
      assertThatThrownBy(() -> OutputGuard.checkReplaceable(fs, hadoop(output), "--out x", false))
          .isInstanceOf(ValidationException.class)
          .hasMessageContaining("it is a sparkprune output but also holds [.notes.crc, mine/.data.crc], which sparkprune did not write");
    }
  }

  /** A marker of the previous version listed files through the checksummed listing: their own .crc files are still theirs. */
  @Test
  void aVersionOneMarkerOwnsTheChecksumsOfItsFilesOnly() throws IOException {
    FileSystem fs = FileSystem.getLocal(conf);
    Path output = Files.createDirectories(dir.resolve("v1"));
    // Written as the previous version wrote an output: through the checksummed file system, so with .report.json.crc.
    try (var stream = fs.create(hadoop(output.resolve("report.json")))) {
      stream.write("{}".getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }
    assertThat(output.resolve(".report.json.crc")).exists();
    Files.writeString(output.resolve(OutputMarker.NAME), "{\"tool\": \"sparkprune\", \"version\": 1, \"run_id\": \"old\", \"files\": {\"report.json\": 2}}");
    OutputGuard.checkReplaceable(fs, hadoop(output), "--out x", false);
    Files.writeString(output.resolve(".other.crc"), "someone's");
    assertThatThrownBy(() -> OutputGuard.checkReplaceable(fs, hadoop(output), "--out x", false))
        .isInstanceOf(ValidationException.class).hasMessageContaining("also holds [.other.crc]");
  }

  /**
   * An output whose files were edited after it was written (a hand-edited config, fine-tuned
   * weights of the same size) is no longer only sparkprune's: replacing it needs --overwrite.
   * The output is published by the real publish step; the checks compare with what it recorded.
   */
  @Test
  void anOutputEditedAfterItWasWrittenIsNotReplaced() throws IOException {
    String out = dir.resolve("pruned").toString();
    Publisher first = Publisher.prepare(conf, out, "first");
    Path staging = Path.of(new org.apache.hadoop.fs.Path(first.staging()).toUri().getPath());
    Files.createDirectories(staging.resolve("model"));
    Files.writeString(staging.resolve("model/config.json"), "{\"hidden_size\": 64}");
    byte[] weights = new byte[1 << 20];
    new java.util.Random(1).nextBytes(weights);
    Files.write(staging.resolve("model/model.safetensors"), weights);
    first.publish();
    Path published = dir.resolve("pruned");
    FileSystem fs = FileSystem.getLocal(conf);
    OutputGuard.checkReplaceable(fs, hadoop(published), "--out x", false);

    // Same size, other content: a size check alone would not see it.
    Files.writeString(published.resolve("model/config.json"), "{\"hidden_size\": 99}");
    assertThatThrownBy(() -> OutputGuard.checkReplaceable(fs, hadoop(published), "--out " + published, false))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot replace --out %s: it is a sparkprune output but [model/config.json] changed after it was written (size or"
            + " content differs from its _SPARKPRUNE_SUCCESS); keep the edited files elsewhere, choose another output folder, or add"
            + " --overwrite to replace it whole", published);
    OutputGuard.checkReplaceable(fs, hadoop(published), "--out x", true);
    Files.writeString(published.resolve("model/config.json"), "{\"hidden_size\": 64}");
    OutputGuard.checkReplaceable(fs, hadoop(published), "--out x", false);

    // Fine-tuned weights: every byte changes, the size does not.
    byte[] tuned = new byte[weights.length];
    new java.util.Random(2).nextBytes(tuned);
    Files.write(published.resolve("model/model.safetensors"), tuned);
    assertThatThrownBy(() -> OutputGuard.checkReplaceable(fs, hadoop(published), "--out x", false))
        .hasMessageContaining("[model/model.safetensors] changed after it was written");
    // The publish checks again under its lock and leaves the edited output as it is.
    Publisher second = Publisher.prepare(conf, out, "second");
    assertThatThrownBy(second::publish).hasMessageContaining("[model/model.safetensors] changed after it was written");
    second.abort();
    assertThat(Files.readAllBytes(published.resolve("model/model.safetensors"))).isEqualTo(tuned);

    // A file of the output deleted by hand is not someone else's data.
    Files.delete(published.resolve("model/model.safetensors"));
    OutputGuard.checkReplaceable(fs, hadoop(published), "--out x", false);
  }

  /** Paths are Unicode: qualifying résultat, 模型 or naïve failed with "Bad escape" (java.nio refuses a raw non-ASCII file:/// URI). */
  @Test
  void nonAsciiPathsAreQualifiedAndComparedLikeAnyOther() throws IOException {
    Path model = Files.createDirectories(dir.resolve("模型"));
    Files.createSymbolicLink(dir.resolve("naïve"), model);
    for (String out : List.of(dir.resolve("résultat").toString(), "file://" + dir.resolve("résultat"), dir.resolve("模型/sous-dossier").toString())) {
      assertThat(OutputGuard.qualify(conf, out).toUri().getPath()).as(out).endsWith(out.endsWith("sous-dossier") ? "/模型/sous-dossier" : "/résultat");
    }
    OutputGuard.checkSeparate(conf, "--out", dir.resolve("résultat").toString(), Map.of("--model", model.toString()));
    assertThatThrownBy(() -> separate(dir.resolve("naïve").toString(), model))
        .isInstanceOf(ValidationException.class).hasMessageContaining("it is the same folder as --model " + model);
    assertThatThrownBy(() -> separate("file://" + dir.resolve("模型/pruned"), model))
        .isInstanceOf(ValidationException.class).hasMessageContaining("it lies inside --model " + model);
  }

  /** A dangling symbolic link as the output would fail only at publish, after the whole job. */
  @Test
  void aDanglingSymbolicLinkIsNotAnOutput() throws IOException {
    Path link = Files.createSymbolicLink(dir.resolve("out"), dir.resolve("gone"));
    assertThatThrownBy(() -> OutputGuard.checkOutput(conf, "--out", link.toString(), OutputGuard.Kind.FOLDER, true, Map.of()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid --out %s: it is a symbolic link to %s, which does not exist; remove the link or choose another output",
            link, dir.resolve("gone"));
  }

  private FileSystem localWith(Class<? extends FileSystem> implementation) throws IOException {
    Configuration local = new Configuration();
    local.set("fs.file.impl", implementation.getName());
    local.setBoolean("fs.file.impl.disable.cache", true);
    return FileSystem.get(java.net.URI.create("file:///"), local);
  }
}
