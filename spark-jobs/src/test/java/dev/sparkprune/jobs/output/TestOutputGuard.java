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
    OutputMarker.write(fs, hadoop(dir.resolve("output")), "run1");
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
}
