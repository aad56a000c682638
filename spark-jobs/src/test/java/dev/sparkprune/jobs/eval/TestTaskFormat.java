package dev.sparkprune.jobs.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The hand-made samples of each native schema (src/test/resources/tasks) turned into requests;
 * the expected strings are lm-evaluation-harness's templates and preprocessing applied by hand.
 */
class TestTaskFormat {
  private static final HadoopFileIO IO = new HadoopFileIO(new Configuration());

  @TempDir Path dir;

  private static TaskSet sample(String name) throws IOException, URISyntaxException {
    Path path = Path.of(TestTaskFormat.class.getResource("/tasks/" + name + ".jsonl").toURI());
    return TaskSet.read(IO, path.toString(), Optional.empty());
  }

  private static void assertShared(TaskDocument document, String context, int gold, String... choices) {
    assertThat(document.contexts()).containsOnly(context);
    assertThat(document.choices()).containsExactly(choices);
    for (int i = 0; i < choices.length; i++) {
      assertThat(document.continuations()[i]).isEqualTo(" " + choices[i]);
    }
    assertThat(document.gold()).isEqualTo(gold);
  }

  @Test
  void hellaswagJoinsActivityAndContextsAndCleansWikiHowTags() throws Exception {
    TaskSet task = sample("hellaswag");
    assertThat(task.name()).isEqualTo("hellaswag");
    assertThat(task.format()).isEqualTo(TaskFormat.HELLASWAG);
    assertShared(task.documents().get(0), "Making a sandwich: A man puts two slices of bread on a plate. He", 0,
        "spreads butter on the bread.", "jumps into a swimming pool.", "drives the plate to school.", "sings to the bread loudly.");
    // strip, " [title]" -> ". ", tags removed, then one pass of double spaces: a removed leading
    // tag leaves the ending's leading space, as in lm-eval.
    assertShared(task.documents().get(1), "Home and Garden: How to water a plant. Fill a can with water.", 0,
        " Pour the water slowly onto the soil.", "Eat the can.", "Throw the plant at the wall.", "Paint the water blue.");
    // ctx_b.capitalize(): first letter upper, the rest lower.
    assertShared(task.documents().get(2), "Playing fetch: A girl throws a ball across the park. The dog", 1,
        "reads a newspaper.", "runs after the ball and brings it back.", "cooks dinner for the family.", "flies to the moon.");
  }

  @Test
  void piqaArcBoolqAndGenericUseTheirTemplates() throws Exception {
    assertShared(sample("piqa").documents().get(0), "Question: To keep milk cold,\nAnswer:", 0, "put it in the fridge.", "put it in the oven.");
    assertShared(sample("piqa").documents().get(1), "Question: How do you dry wet hands?\nAnswer:", 1,
        "Wash them again with water.", "Rub them with a clean towel.");

    TaskSet arc = sample("arc_easy");
    assertThat(arc.format()).isEqualTo(TaskFormat.ARC);
    assertShared(arc.documents().get(0), "Question: Which of these is the sun?\nAnswer:", 0, "a star", "a planet", "a moon", "a comet");
    assertShared(arc.documents().get(1), "Question: What do plants need to make food?\nAnswer:", 1, "darkness", "sunlight", "sand");
    assertShared(arc.documents().get(2), "Question: Where does a fish live?\nAnswer:", 1, "in a tree", "in water");

    TaskSet boolq = sample("boolq");
    assertThat(boolq.format()).isEqualTo(TaskFormat.BOOLQ);
    assertThat(boolq.format().normalized()).isFalse();
    assertShared(boolq.documents().get(0),
        "The Sun is the star at the center of the Solar System.\nQuestion: is the sun a star?\nAnswer:", 1, "no", "yes");
    assertShared(boolq.documents().get(1), "Fish are aquatic animals that live in water.\nQuestion: do fish live in trees?\nAnswer:", 0, "no", "yes");

    TaskSet generic = sample("generic");
    assertThat(generic.format()).isEqualTo(TaskFormat.GENERIC);
    assertShared(generic.documents().get(1), "Tom was sad because his toy broke.", 1, "He sang to the sky forever.", "His mom helped him fix it.");
    assertThat(generic.requests()).isEqualTo(5);
  }

  @Test
  void openbookqaAndRteUseTheirTemplates() throws Exception {
    TaskSet obqa = sample("openbookqa");
    assertThat(obqa.format()).isEqualTo(TaskFormat.OPENBOOKQA);
    assertShared(obqa.documents().get(0), "The sun is responsible for", 1,
        "puppies learning new tricks", "plants sprouting, blooming and wilting", "children growing up", "the moon spinning");
    // answerKey.lstrip(): " A" is label A.
    assertShared(obqa.documents().get(1), "Water turns to ice when it is", 0, "cold", "hot");

    TaskSet rte = sample("rte");
    assertThat(rte.format()).isEqualTo(TaskFormat.RTE);
    assertThat(rte.format().normalized()).isFalse();
    assertShared(rte.documents().get(0),
        "The dog ran across the yard to catch the ball.\nQuestion: A dog is chasing a ball. True or False?\nAnswer:", 0, "True", "False");
    // GLUE's field names in the same format.
    assertShared(rte.documents().get(1), "Lily ate all of her soup.\nQuestion: Lily did not eat. True or False?\nAnswer:", 1, "True", "False");
  }

  @Test
  void winograndePutsTheOptionsInTheContextAndScoresTheRest() throws Exception {
    TaskSet task = sample("winogrande");
    assertThat(task.format()).isEqualTo(TaskFormat.WINOGRANDE);
    assertThat(task.format().normalized()).isFalse();
    TaskDocument first = task.documents().get(0);
    assertThat(first.contexts()).containsExactly("The cat chased the mouse because the cat", "The cat chased the mouse because the mouse");
    assertThat(first.continuations()).containsExactly(" was hungry.", " was hungry.");
    assertThat(first.gold()).isZero();
    assertThat(task.documents().get(1).contexts()).containsExactly("Tom gave Ben his coat because Tom", "Tom gave Ben his coat because Ben");
    assertThat(task.documents().get(1).gold()).isEqualTo(1);
  }

  @Test
  void accNormLengthsCountCodePoints() throws IOException {
    Path file = write("lengths.jsonl", "{\"context\": \"x\", \"choices\": [\"caf\u00e9\", \"\ud83d\ude00!\", \"ab\"], \"label\": 0}");
    TaskDocument document = TaskSet.read(IO, file.toString(), Optional.empty()).documents().get(0);
    assertThat(document.choiceLengths()).containsExactly(4, 2, 2);
  }

  @Test
  void badRowsFailNamingFileAndLine() throws IOException {
    Path missing = write("missing.jsonl",
        "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 0}\n{\"goal\": \"g\", \"sol1\": \"a\", \"label\": 1}");
    assertThatThrownBy(() -> TaskSet.read(IO, missing.toString(), Optional.empty()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid task file " + missing + " line 2: Missing field 'sol2'");
    Path outOfRange = write("range.jsonl", "\n{\"context\": \"c\", \"choices\": [\"a\", \"b\", \"c\"], \"label\": 3}");
    assertThatThrownBy(() -> TaskSet.read(IO, outOfRange.toString(), Optional.empty()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid task file " + outOfRange + " line 2: Invalid label 3: the document has 3 choices (labels 0 to 2)");
    Path answerKey = write("arc.jsonl", "{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, \"answerKey\": \"E\"}");
    assertThatThrownBy(() -> TaskSet.read(IO, answerKey.toString(), Optional.empty()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid task file " + answerKey + " line 1: Invalid answerKey 'E': not among choices.label [A]");
    Path blank = write("wino.jsonl", "{\"sentence\": \"no blank\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": \"1\"}");
    assertThatThrownBy(() -> TaskSet.read(IO, blank.toString(), Optional.empty()))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid task file " + blank + " line 1: Invalid field 'sentence': it has no '_' blank");
    Path unknown = write("unknown.jsonl", "{\"prompt\": \"p\"}");
    assertThatThrownBy(() -> TaskSet.read(IO, unknown.toString(), Optional.empty()))
        .isInstanceOf(ValidationException.class)
        .hasMessageStartingWith("Invalid task file " + unknown + " line 1: Cannot detect the task format from fields [prompt]")
        .hasMessageEndingWith("or pass --task-format hellaswag|piqa|arc|winogrande|boolq|openbookqa|rte|generic");
    Path malformed = write("malformed.jsonl", "{\"context\": ");
    assertThatThrownBy(() -> TaskSet.read(IO, malformed.toString(), Optional.empty()))
        .isInstanceOf(ValidationException.class)
        .hasMessageStartingWith("Invalid JSONL " + malformed + " line 1: ");
  }

  @Test
  void theFormatCanBeForced() throws Exception {
    Path path = Path.of(TestTaskFormat.class.getResource("/tasks/generic.jsonl").toURI());
    assertThatThrownBy(() -> TaskSet.read(IO, path.toString(), Optional.of("piqa")))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid task file " + path + " line 1: Missing field 'goal'");
    assertThatThrownBy(() -> TaskSet.read(IO, path.toString(), Optional.of("mmlu")))
        .isInstanceOf(ValidationException.class)
        .hasMessage("Invalid --task-format: mmlu (expected one of hellaswag|piqa|arc|winogrande|boolq|openbookqa|rte|generic)");
  }

  private Path write(String name, String content) throws IOException {
    return Files.writeString(dir.resolve(name), content, StandardCharsets.UTF_8);
  }
}
