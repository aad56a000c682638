package dev.sparkprune.jobs.prune;

import dev.sparkprune.jobs.prune.output.PruneReport;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.scoring.PruneResult;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.methods.Admm;
import dev.sparkprune.scoring.methods.Dsnot;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.scoring.methods.Refinement;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** --refine dsnot and --update admm in the prune job, against the in-process sequential protocol. */
class TestPruneJobRefinement extends SparkTestBase {
  @TempDir static Path dir;

  private static final Refinement DSNOT_THEN_ADMM =
      new Refinement(Refinement.Update.ADMM, Admm.DEFAULTS, true, Dsnot.DEFAULTS, "");

  @Test
  void dsnotThenAdmmOnWandaNofMEqualsTheProtocolRunInProcess() throws IOException {
    Path out = dir.resolve("wanda-dsnot-admm");
    PruneOptions options = TestPruneJob.stories(PruningMethod.WANDA, SparsityTarget.nOfM(2, 4), out)
        .refinement(DSNOT_THEN_ADMM)
        .build();
    PruneReport report = TestPruneJob.run(options);
    Map<String, PruneResult> expected = TestPruneJob.referenceResults(options, true);
    Map<String, Mask> masks = TestPruneJob.readMasks(out);
    // Block 0 sees the dense embeddings either way: there the masks differ only by DSnoT's swaps.
    Map<String, Mask> withoutDsnot = TestPruneJob.referenceMasks(
        TestPruneJob.stories(PruningMethod.WANDA, SparsityTarget.nOfM(2, 4), out)
            .refinement(new Refinement(Refinement.Update.ADMM, Admm.DEFAULTS, false, Dsnot.DEFAULTS, "")).build(), true);
    assertThat(masks).hasSize(35);
    HadoopFileIO io = new HadoopFileIO(new Configuration());
    ModelArchive original = ModelArchive.open(io, SharedData.stories260K().toString());
    try (SafetensorsReader dense = original.openShard("model.safetensors");
        SafetensorsReader pruned = ModelArchive.open(io, out.resolve("model").toString()).openShard("model.safetensors")) {
      int changedMasks = 0;
      for (Map.Entry<String, PruneResult> entry : expected.entrySet()) {
        String name = entry.getKey();
        assertThat(masks.get(name)).as(name).isEqualTo(entry.getValue().mask());
        if (name.startsWith("model.layers.0.") && !withoutDsnot.get(name).equals(masks.get(name))) {
          changedMasks++;
        }
        float[] weights = pruned.readFloats(name);
        float[] reference = entry.getValue().weights();
        float[] before = dense.readFloats(name);
        boolean updated = false;
        for (int i = 0; i < weights.length; i++) {
          // F32 archive: the job's weights are the reference's up to BLAS summation order.
          assertThat(weights[i]).as("%s[%d]", name, i).isCloseTo(reference[i], Offset.offset(1e-4f * (1 + Math.abs(reference[i]))));
          updated |= weights[i] != 0 && weights[i] != before[i];
        }
        assertThat(updated).as("ADMM changed kept weights of %s", name).isTrue();
      }
      assertThat(changedMasks).as("block 0 linears whose mask DSnoT changed").isPositive();
    }
    assertThat(Files.readString(out.resolve("report.json"))).contains("\"refinement\"");
    assertThat(report).isNotNull();
  }

  @Test
  void gradualAdmmComposesWithOwlTargets() throws IOException {
    Path out = dir.resolve("owl-gradual");
    PruneOptions options = TestPruneJob.stories(PruningMethod.WANDA, SparsityTarget.unstructured(0.6), out)
        .allocation(PruneOptions.Allocation.OWL)
        .refinement(new Refinement(Refinement.Update.ADMM_GRADUAL, new Admm.Settings(10, 0.1, 1, 5), false, Dsnot.DEFAULTS, ""))
        .build();
    TestPruneJob.run(options);
    String report = Files.readString(out.resolve("report.json"));
    Map<String, Mask> masks = TestPruneJob.readMasks(out);
    long pruned = 0;
    long total = 0;
    for (Mask mask : masks.values()) {
      pruned += mask.prunedCount();
      total += (long) mask.rows() * mask.cols();
      // Gradual ADMM ends on exactly floor(cols * s_block) pruned per row.
      for (int r = 1; r < mask.rows(); r++) {
        assertThat(mask.keptInRow(r)).isEqualTo(mask.keptInRow(0));
      }
    }
    assertThat((double) pruned / total).isCloseTo(0.6, Offset.offset(0.02));
    assertThat(report).contains("\"kind\" : \"owl\"");
  }

  @Test
  void badCombinationsFailBeforeAnyWork() {
    assertThatThrownBy(() -> TestPruneJob.stories(PruningMethod.SPARSEGPT, SparsityTarget.unstructured(0.5), dir.resolve("a"))
            .refinement(DSNOT_THEN_ADMM).build())
        .isInstanceOf(ValidationException.class)
        .hasMessage("Cannot combine --method, --update and --refine: DSnoT refines a Wanda or RIA mask: use it with the wanda or ria method, not sparsegpt");
    assertThatThrownBy(() -> TestPruneJob.stories(PruningMethod.MAGNITUDE, SparsityTarget.unstructured(0.5), dir.resolve("b"))
            .calibration(null)
            .refinement(new Refinement(Refinement.Update.ADMM, Admm.DEFAULTS, false, Dsnot.DEFAULTS, ""))
            .build())
        .isInstanceOf(ValidationException.class)
        .hasMessage("Missing --calib: --update admm and --refine dsnot work from calibration statistics");
  }
}
