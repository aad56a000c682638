package dev.sparkprune.jobs.prune.allocation;

import dev.sparkprune.jobs.prune.PruneJob;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.TestPruneJob;
import dev.sparkprune.jobs.prune.output.PruneReport;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparkprune.jobs.SparkTestBase;
import dev.sparkprune.scoring.SparsityTarget;
import dev.sparkprune.scoring.allocation.Lamp;
import dev.sparkprune.scoring.methods.PruningMethod;
import dev.sparkprune.tensorio.SafetensorsReader;
import dev.sparkprune.tensorio.SharedData;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.arch.Architectures;
import dev.sparkprune.tensorio.arch.Linear;
import dev.sparkprune.tensorio.archive.ModelArchive;
import dev.sparkprune.tensorio.io.LocalFileIO;
import dev.sparkprune.tensorio.mask.Mask;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Global magnitude and LAMP thresholds on stories260K against a brute-force sort of every score. */
public class TestGlobalAllocation extends SparkTestBase {
  @TempDir static Path dir;

  private static Map<String, float[]> scores(boolean lamp) throws IOException {
    ModelArchive archive = ModelArchive.open(new LocalFileIO(), SharedData.stories260K().toString());
    Map<String, float[]> scores = new LinkedHashMap<>();
    try (SafetensorsReader reader = archive.openShard("model.safetensors")) {
      for (Linear linear : Architectures.layout(archive).linears()) {
        float[] w = reader.readFloats(linear.tensorName());
        float[] s = new float[w.length];
        for (int i = 0; i < w.length; i++) {
          s[i] = Math.abs(w[i]);
        }
        scores.put(linear.tensorName(), lamp ? Lamp.scores(w) : s);
      }
    }
    return scores;
  }

  /** Smallest t with sum_l min(#{s <= t}, cap_l) >= target, by sorting all (score, layer) pairs. */
  public static float bruteForce(Map<String, float[]> scores, Map<String, Long> caps, long target) {
    List<String> layers = new ArrayList<>(scores.keySet());
    List<long[]> all = new ArrayList<>();
    for (int l = 0; l < layers.size(); l++) {
      for (float s : scores.get(layers.get(l))) {
        all.add(new long[] {Float.floatToIntBits(s + 0f), l});
      }
    }
    all.sort((a, b) -> Long.compare(a[0], b[0]));
    long[] counts = new long[layers.size()];
    long pruned = 0;
    for (int i = 0; i < all.size(); i++) {
      int l = (int) all.get(i)[1];
      if (counts[l]++ < caps.get(layers.get(l))) {
        pruned++;
      }
      boolean lastOfValue = i + 1 == all.size() || all.get(i + 1)[0] != all.get(i)[0];
      if (lastOfValue && pruned >= target) {
        return Float.intBitsToFloat((int) all.get(i)[0]);
      }
    }
    throw new AssertionError("target not reachable");
  }

  private static PruneReport run(PruneOptions options) throws IOException {
    return new PruneJob(spark, options, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
  }

  private static PruneOptions options(PruneOptions.Allocation allocation, double sparsity, double minKeep, Path out) {
    return PruneOptions.builder().model(SharedData.stories260K().toString()).out(out.toString()).method(PruningMethod.MAGNITUDE)
        .target(SparsityTarget.unstructured(sparsity)).allocation(allocation).minKeep(minKeep).build();
  }

  /** Returns how many layers the min-keep cap held back. */
  private int checkAgainstBruteForce(PruneOptions.Allocation allocation, double sparsity, double minKeep) throws IOException {
    Path out = dir.resolve(allocation + "-" + sparsity + "-" + minKeep);
    PruneReport report = run(options(allocation, sparsity, minKeep, out));
    Map<String, float[]> scores = scores(allocation == PruneOptions.Allocation.LAMP);
    Map<String, Long> caps = new LinkedHashMap<>();
    long total = 0;
    for (Map.Entry<String, float[]> layer : scores.entrySet()) {
      long numel = layer.getValue().length;
      caps.put(layer.getKey(), numel - (long) Math.ceil(minKeep * numel));
      total += numel;
    }
    long target = (long) (total * sparsity);
    float threshold = bruteForce(scores, caps, target);
    JsonNode json = report.json().get("allocation");
    assertThat((float) json.get("threshold").asDouble()).isEqualTo(threshold);
    assertThat(json.get("histogram_bytes_to_driver").asLong()).isPositive().isLessThan(10L << 20);

    Map<String, Mask> masks = TestPruneJob.readMasks(out);
    long pruned = 0;
    int capped = 0;
    List<Double> sparsities = new ArrayList<>();
    for (Map.Entry<String, float[]> layer : scores.entrySet()) {
      long atOrBelow = Arrays.stream(toDoubles(layer.getValue())).filter(s -> (float) s <= threshold).count();
      Mask mask = masks.get(layer.getKey());
      assertThat(mask.prunedCount()).as(layer.getKey()).isEqualTo(Math.min(atOrBelow, caps.get(layer.getKey())));
      assertThat((double) mask.keptCount() / layer.getValue().length).isGreaterThanOrEqualTo(minKeep);
      pruned += mask.prunedCount();
      capped += atOrBelow > caps.get(layer.getKey()) ? 1 : 0;
      sparsities.add(mask.sparsity());
    }
    assertThat(pruned).isGreaterThanOrEqualTo(target);
    long ties = scores.values().stream().mapToLong(s -> Arrays.stream(toDoubles(s)).filter(v -> (float) v == threshold).count()).sum();
    assertThat(pruned - target).isLessThanOrEqualTo(ties);
    // Layer-adaptive: the layers end at different sparsities.
    assertThat(sparsities.stream().distinct().count()).isGreaterThan(5);
    return capped;
  }

  private static double[] toDoubles(float[] values) {
    double[] out = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = values[i];
    }
    return out;
  }

  @Test
  void globalMagnitudeThresholdEqualsABruteForceSort() throws IOException {
    checkAgainstBruteForce(PruneOptions.Allocation.GLOBAL, 0.5, 0.01);
  }

  @Test
  void lampThresholdEqualsABruteForceSort() throws IOException {
    checkAgainstBruteForce(PruneOptions.Allocation.LAMP, 0.6, 0.01);
  }

  @Test
  void minKeepIsHonouredWhenItBinds() throws IOException {
    assertThat(checkAgainstBruteForce(PruneOptions.Allocation.GLOBAL, 0.65, 0.3)).as("layers held at min-keep").isPositive();
    assertThatThrownBy(() -> run(options(PruneOptions.Allocation.GLOBAL, 0.8, 0.3, dir.resolve("unreachable"))))
        .isInstanceOf(ValidationException.class)
        .hasMessageContaining("Cannot reach sparsity 0.8 with --min-keep 0.3: at most 69.99% of the prunable weights can be pruned");
  }

  @Test
  void globalAllocationNeedsMagnitudeScoresAndAnUnstructuredTarget() {
    assertThatThrownBy(() -> PruneOptions.builder().model("m").out("o").method(PruningMethod.WANDA).calibration("c")
            .target(SparsityTarget.unstructured(0.5)).allocation(PruneOptions.Allocation.GLOBAL).build())
        .isInstanceOf(ValidationException.class).hasMessageContaining("use it with --method magnitude");
    assertThatThrownBy(() -> PruneOptions.builder().model("m").out("o").method(PruningMethod.MAGNITUDE)
            .target(SparsityTarget.nOfM(2, 4)).allocation(PruneOptions.Allocation.LAMP).build())
        .isInstanceOf(ValidationException.class).hasMessageContaining("needs an unstructured --sparsity");
    // No shared data needed: options are checked before any model is opened.
    assertThatThrownBy(() -> PruneOptions.builder().model("m").out("o").method(PruningMethod.MAGNITUDE)
            .target(SparsityTarget.unstructured(0.5)).allocation(PruneOptions.Allocation.GLOBAL).minKeep(1.0).build())
        .isInstanceOf(ValidationException.class).hasMessageContaining("Invalid --min-keep 1.0");
  }
}
