package dev.sparkprune.jobs.options;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.jobs.prune.HadoopInputs;
import dev.sparkprune.jobs.prune.PruneOptions;
import dev.sparkprune.jobs.prune.PruneOptionsResolver;
import dev.sparkprune.tensorio.ValidationException;
import dev.sparkprune.tensorio.io.HadoopFileIO;
import java.nio.file.Path;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;

/**
 * Locations are qualified once, on the driver, against its working folder and default file
 * system; the expected URIs are computed with java.nio from this JVM's working folder.
 */
class TestLocations {
  private static final Configuration CONF = new Configuration();
  private static final Path CWD = Path.of("").toAbsolutePath();

  private static String file(Path path) {
    return "file:" + path.toAbsolutePath().normalize();
  }

  @Test
  void relativeAndSchemelessPathsBecomeFileUrisAgainstTheWorkingFolder() {
    assertThat(Locations.qualify("data/model", CONF)).isEqualTo(file(CWD.resolve("data/model")));
    assertThat(Locations.qualify("../shared/data/stories260K/", CONF)).isEqualTo(file(CWD.resolve("../shared/data/stories260K")));
    assertThat(Locations.qualify("/tmp/a/./b/../c", CONF)).isEqualTo("file:/tmp/a/c");
    assertThat(Locations.qualify("file:///tmp/x", CONF)).isEqualTo("file:/tmp/x");
    // A URI with an authority stays as given, only normalized: qualifying it would open its file system.
    assertThat(Locations.qualify("hdfs://nn:8020/models/m/../x", CONF)).isEqualTo("hdfs://nn:8020/models/x");
    assertThat(Locations.qualify("s3a://bucket/models/m", CONF)).isEqualTo("s3a://bucket/models/m");
    assertThatThrownBy(() -> Locations.qualify(" ", CONF)).isInstanceOf(ValidationException.class).hasMessageContaining("Invalid location");
  }

  /** The resolver on Hadoop inputs qualifies exactly the location keys, so the settings key has one spelling per file. */
  @Test
  void resolvedOptionsHoldQualifiedLocationsAndTheSameSettingsKeyForAnySpelling() throws Exception {
    PruneOptionsResolver resolver = new PruneOptionsResolver(Map.of(), new HadoopInputs(new HadoopFileIO(CONF)));
    PruneOptions relative = resolver.resolve(Map.of("model", "m", "out", "o", "method", "wanda", "calib", "texts/c.txt", "seqlen", "64",
        "config", "rules.yaml", "gpu-discovery-script", "./getGpus.sh"));
    assertThat(relative.model()).isEqualTo(file(CWD.resolve("m")));
    assertThat(relative.out()).isEqualTo(file(CWD.resolve("o")));
    assertThat(relative.calibration()).contains(file(CWD.resolve("texts/c.txt")));
    assertThat(relative.config()).contains(file(CWD.resolve("rules.yaml")));
    // A path on each executor, not on the driver: left as given.
    assertThat(relative.gpuDiscoveryScript()).contains("./getGpus.sh");
    PruneOptions absolute = resolver.resolve(Map.of("model", CWD.resolve("m").toString(), "out", "./o", "method", "wanda",
        "calib", CWD.resolve("texts/../texts/c.txt").toString(), "seqlen", "64", "config", "rules.yaml", "gpu-discovery-script", "./getGpus.sh"));
    assertThat(absolute.settingsKey()).isEqualTo(relative.settingsKey());
  }
}
