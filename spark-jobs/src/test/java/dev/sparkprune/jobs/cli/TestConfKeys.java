package dev.sparkprune.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.sparkprune.jobs.options.OptionKey;
import dev.sparkprune.jobs.prune.PruneKeys;
import dev.sparkprune.jobs.shrink.ShrinkKeys;
import dev.sparkprune.tensorio.ValidationException;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

/** A cluster conf may set every command's tuning keys, in one spelling; anything else under spark.sparkprune is refused. */
class TestConfKeys {
  @Test
  void everyTuningKeyOfEveryCommandIsKnownInKebabCase() {
    for (var keys : java.util.List.of(PruneKeys.ALL, ShrinkKeys.ALL)) {
      for (OptionKey<?> key : keys) {
        assertThat(key.name()).as("one spelling").matches("[a-z0-9]+(-[a-z0-9]+)*");
        if (key.fromConf()) {
          assertThat(ConfKeys.known()).contains(key.confKey());
        }
      }
    }
    assertThat(ConfKeys.known()).contains("spark.sparkprune.nvidia-smi", "spark.sparkprune.test.probe-class")
        .contains("spark.sparkprune.gpusPerTask", "spark.sparkprune.nvidiaSmi").doesNotContain("spark.sparkprune.model");
    ConfKeys.checkKnown(new SparkConf(false).set("spark.sparkprune.min-keep", "0.1").set("spark.sparkprune.gpusPerTask", "1")
        .set("spark.sparkprune.test.fail-first-attempt", "score").set("spark.executor.memory", "4g"));
  }

  @Test
  void aTypoIsRefusedWithTheKnownKeys() {
    assertThatThrownBy(() -> ConfKeys.checkKnown(new SparkConf(false).set("spark.sparkprune.nsample", "64")))
        .isInstanceOf(ValidationException.class)
        .hasMessageStartingWith("Unknown Spark conf key spark.sparkprune.nsample: no sparkprune setting has that name (known: ")
        .hasMessageContaining("spark.sparkprune.nsamples, ");
    // A per-run key is not a cluster setting.
    assertThatThrownBy(() -> ConfKeys.checkKnown(new SparkConf(false).set("spark.sparkprune.model", "m")))
        .hasMessageStartingWith("Unknown Spark conf key spark.sparkprune.model:");
  }
}
