package dev.sparkprune.jobs.prune.plan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestPruneRules {
  @TempDir Path dir;

  private static List<PlannedLinear> plan() throws IOException {
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString());
    List<PlannedLinear> plan = new ArrayList<>();
    for (Linear linear : Architectures.layout(archive).linears()) {
      plan.add(new PlannedLinear(linear, archive.tensor(linear.tensorName()), archive.quantization(), PruningMethod.WANDA, SparsityTarget.unstructured(0.5)));
    }
    return plan;
  }

  private static PruneRules parse(String json) throws IOException {
    return PruneRules.parse("rules.json", new ObjectMapper().readTree(json));
  }

  @Test
  void theShippedExampleAppliesToALlamaModel() throws IOException {
    // Surefire runs in the module folder; conf/ is the project's.
    Path example = Path.of("..", "conf", "prune-rules.example.yaml");
    assertThat(example).exists();
    List<PlannedLinear> applied = PruneRules.load(new LocalFileIO(), example.toString()).apply(plan());
    assertThat(applied).hasSize(28).noneMatch(planned -> planned.tensorName().startsWith("model.layers.0."));
    assertThat(applied).filteredOn(planned -> planned.tensorName().contains(".mlp.")).allMatch(planned -> planned.method == PruningMethod.SPARSEGPT);
    assertThat(applied).filteredOn(planned -> planned.tensorName().contains("o_proj")).allMatch(planned -> planned.target.equals(SparsityTarget.nOfM(2, 4)));
    assertThat(applied).filteredOn(planned -> planned.tensorName().contains("q_proj"))
        .allMatch(planned -> planned.method == PruningMethod.WANDA && planned.target.equals(SparsityTarget.unstructured(0.5)));
  }

  @Test
  void invalidRulesAreNamed() throws IOException {
    List<PlannedLinear> plan = plan();
    assertThatThrownBy(() -> parse("{\"rule\": []}")).isInstanceOf(ValidationException.class).hasMessageContaining("unknown keys [rule]");
    assertThatThrownBy(() -> parse("{\"rules\": [{\"match\": \"x\", \"sparsty\": 0.5}]}"))
        .isInstanceOf(ValidationException.class).hasMessageContaining("rule 1 has unknown keys [sparsty]");
    assertThatThrownBy(() -> parse("{\"rules\": [{\"match\": \"(\", \"skip\": true}]}"))
        .isInstanceOf(ValidationException.class).hasMessageContaining("invalid regex '('");
    assertThatThrownBy(() -> parse("{\"rules\": [{\"match\": \"x\"}]}"))
        .isInstanceOf(ValidationException.class).hasMessageContaining("sets nothing");
    assertThatThrownBy(() -> parse("{\"rules\": [{\"match\": \"x\", \"sparsity\": 0.5, \"pattern\": \"2:4\"}]}"))
        .isInstanceOf(ValidationException.class).hasMessageContaining("sets both sparsity and pattern");
    assertThatThrownBy(() -> parse("{\"rules\": [{\"match\": \"x\", \"sparsity\": 1.5}]}"))
        .isInstanceOf(ValidationException.class).hasMessageContaining("Invalid sparsity 1.5");
    assertThatThrownBy(() -> parse("{\"rules\": [{\"match\": \"lm_head.*\", \"skip\": true}]}").apply(plan))
        .isInstanceOf(ValidationException.class).hasMessageContaining("rule 1 ('lm_head.*') matches no prunable linear");
    assertThatThrownBy(() -> parse("{\"rules\": [{\"match\": \".*mlp.*\", \"sparsity\": 0.5}, {\"match\": \".*down.*\", \"sparsity\": 0.6}]}").apply(plan))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Conflicting --config rules for model.layers.0.mlp.down_proj.weight: rule 1 ('.*mlp.*') sets 0.5, rule 2 ('.*down.*') sets 0.6");
    // A skip wins over a broader rule's settings.
    List<PlannedLinear> skipWins =
        parse("{\"rules\": [{\"match\": \".*layers.1.*\", \"skip\": true}, {\"match\": \".*q_proj.*\", \"method\": \"ria\"}]}").apply(plan);
    assertThat(skipWins).hasSize(28).noneMatch(planned -> planned.tensorName().startsWith("model.layers.1."));
    assertThat(skipWins).filteredOn(planned -> planned.tensorName().contains("q_proj")).hasSize(4).allMatch(planned -> planned.method == PruningMethod.RIA);
    assertThatThrownBy(() -> parse("{\"rules\": [{\"match\": \".*o_proj.*\", \"pattern\": \"3:5\"}]}").apply(plan))
        .isInstanceOf(ValidationException.class).hasMessageContaining("M = 5 does not divide in_features 64");
    Path bad = dir.resolve("bad.yaml");
    Files.writeString(bad, "rules: [ {match: x\n");
    assertThatThrownBy(() -> PruneRules.load(new LocalFileIO(), bad.toString()))
        .isInstanceOf(ValidationException.class).hasMessageStartingWith("Invalid --config " + bad);
    // Agreeing rules are fine.
    assertThat(parse("{\"rules\": [{\"match\": \".*mlp.*\", \"sparsity\": 0.6}, {\"match\": \".*down.*\", \"sparsity\": 0.6}]}").apply(plan)).hasSize(35);
  }
}
